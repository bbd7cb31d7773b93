/* SQLite's own share of a CSV load: the floor under any loader that writes through SQLite's API.
 *
 * Build and run (what bench_csv_speed.py does):
 *     cc -O2 -o sqlite_floor benches/sqlite_floor.c -lsqlite3
 *     ./sqlite_floor DATA.csv DB [--no-index]
 *
 * Reads a CSV written by ``peers.generate`` (a header, then 8 columns: two integers, two reals,
 * four texts, the last one empty for NULL; no quoting) into memory first, untimed, then writes the
 * rows the way tallyclerk's SQLite writer does (``rust/data/sqlite.rs``,
 * ``builtins/sqlite_sink.py``), and times only that:
 *
 *   - a new file, ``PRAGMA synchronous=NORMAL`` then ``journal_mode=WAL``, a 512 KiB page cache;
 *   - the typed table with the ``_tc_file_id`` column and the index on it (item 5 of issue 16:
 *     ``--force`` and crash re-runs delete a file's rows through it);
 *   - one ``BEGIN IMMEDIATE`` transaction, 64-row ``INSERT ... VALUES`` statements, values bound
 *     with ``SQLITE_STATIC`` (no copies), then ``COMMIT`` (and its WAL checkpoint) and close.
 *
 * No parsing, no validation, no audit rows, no interpreter: what it prints is less than any
 * loader with the same durability and index can take, on this machine and this SQLite library.
 * ``--no-index`` leaves the index out: the floor of a loader that gave up item 5's index.
 * Output, one line: ``rows wall_seconds cpu_seconds insert_seconds commit_close_seconds``.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COLUMNS 9 /* the file's 8 and _tc_file_id */
#define PER_STATEMENT 64

typedef struct {
    long long id, customer;
    double amount, ratio;
    char *texts[4]; /* sku, region, order_date, note (NULL when empty) */
} Row;

static double seconds(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void fail(const char *what, sqlite3 *db) {
    fprintf(stderr, "sqlite_floor: %s: %s\n", what, db ? sqlite3_errmsg(db) : "");
    exit(1);
}

static void exec(sqlite3 *db, const char *sql) {
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) fail(sql, db);
}

static Row *read_rows(const char *path, size_t *count) {
    FILE *f = fopen(path, "r");
    if (!f) fail(path, NULL);
    size_t cap = 1 << 16, n = 0;
    Row *rows = malloc(cap * sizeof(Row));
    char line[8192];
    if (!fgets(line, sizeof line, f)) fail("empty file", NULL);
    while (fgets(line, sizeof line, f)) {
        char *fields[8], *p = line;
        for (int i = 0; i < 8; i++) {
            fields[i] = p;
            char *end = strpbrk(p, ",\r\n");
            if (end) {
                *end = 0;
                p = end + 1;
            } else {
                p += strlen(p);
            }
        }
        if (n == cap) rows = realloc(rows, (cap *= 2) * sizeof(Row));
        if (!rows) fail("out of memory", NULL);
        Row *r = &rows[n++];
        r->id = atoll(fields[0]);
        r->customer = atoll(fields[1]);
        r->amount = atof(fields[2]);
        r->ratio = atof(fields[3]);
        for (int i = 0; i < 4; i++) r->texts[i] = fields[4 + i][0] ? strdup(fields[4 + i]) : NULL;
    }
    fclose(f);
    *count = n;
    return rows;
}

static void bind_row(sqlite3_stmt *stmt, int base, const Row *r) {
    sqlite3_bind_int64(stmt, base + 1, r->id);
    sqlite3_bind_int64(stmt, base + 2, r->customer);
    sqlite3_bind_double(stmt, base + 3, r->amount);
    sqlite3_bind_double(stmt, base + 4, r->ratio);
    for (int i = 0; i < 4; i++) {
        if (r->texts[i]) sqlite3_bind_text(stmt, base + 5 + i, r->texts[i], -1, SQLITE_STATIC);
        else sqlite3_bind_null(stmt, base + 5 + i);
    }
    sqlite3_bind_int64(stmt, base + 9, 1); /* _tc_file_id */
}

static sqlite3_stmt *insert_of(sqlite3 *db, int rows) {
    static char sql[PER_STATEMENT * 24 + 64];
    strcpy(sql, "INSERT INTO \"orders\" VALUES ");
    for (int k = 0; k < rows; k++) strcat(sql, k ? ",(?,?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?,?)");
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) fail("prepare", db);
    return stmt;
}

static void run(sqlite3 *db, sqlite3_stmt *stmt, const Row *rows, size_t n) {
    for (size_t k = 0; k < n; k++) bind_row(stmt, (int)k * COLUMNS, &rows[k]);
    if (sqlite3_step(stmt) != SQLITE_DONE) fail("insert", db);
    sqlite3_reset(stmt);
}

int main(int argc, char **argv) {
    int index = argc == 3;
    if (argc != 3 && !(argc == 4 && strcmp(argv[3], "--no-index") == 0)) {
        fprintf(stderr, "usage: sqlite_floor DATA.csv DB [--no-index]\n");
        return 2;
    }
    size_t n;
    Row *rows = read_rows(argv[1], &n);

    double wall0 = seconds(CLOCK_MONOTONIC), cpu0 = seconds(CLOCK_PROCESS_CPUTIME_ID);
    sqlite3 *db;
    if (sqlite3_open(argv[2], &db) != SQLITE_OK) fail("open", db);
    exec(db, "PRAGMA synchronous=NORMAL");
    exec(db, "PRAGMA journal_mode=WAL");
    exec(db, "PRAGMA cache_size=-512");
    exec(db, "CREATE TABLE \"orders\" (\"id\" INTEGER, \"customer_id\" INTEGER, \"amount\" REAL, "
             "\"ratio\" REAL, \"sku\" TEXT, \"region\" TEXT, \"order_date\" TEXT, \"note\" TEXT, "
             "\"_tc_file_id\" INTEGER)");
    if (index) exec(db, "CREATE INDEX \"_tc_file_orders\" ON \"orders\" (\"_tc_file_id\")");
    exec(db, "BEGIN IMMEDIATE");
    sqlite3_stmt *full = insert_of(db, PER_STATEMENT), *one = insert_of(db, 1);
    size_t i = 0;
    for (; i + PER_STATEMENT <= n; i += PER_STATEMENT) run(db, full, rows + i, PER_STATEMENT);
    for (; i < n; i++) run(db, one, rows + i, 1);
    double inserted = seconds(CLOCK_MONOTONIC);
    sqlite3_finalize(full);
    sqlite3_finalize(one);
    exec(db, "COMMIT");
    if (sqlite3_close(db) != SQLITE_OK) fail("close", db);
    double wall1 = seconds(CLOCK_MONOTONIC), cpu1 = seconds(CLOCK_PROCESS_CPUTIME_ID);

    printf("%zu %.4f %.4f %.4f %.4f\n", n, wall1 - wall0, cpu1 - cpu0, inserted - wall0,
           wall1 - inserted);
    return 0;
}
