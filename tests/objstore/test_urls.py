"""Properties of object URLs: credentials in a URL are refused and never echoed; what counts as
remote."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tallyclerk import objstore
from tallyclerk.errors import ConfigError

# a marker no message contains, so a shared word ("passwo") is not mistaken for an echo
SECRET = st.text(string.ascii_letters + string.digits + "-_.~+", min_size=6,
                 max_size=40).map(lambda s: "Zq9" + s)
PARAM = st.sampled_from(["sig", "X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token",
                         "token", "access_token", "password", "client_secret", "api_key"])
SCHEME = st.sampled_from(["s3", "gs", "az", "https", "http"])


@given(scheme=SCHEME, secret=SECRET)
def test_a_password_in_the_url_is_refused_and_not_echoed(scheme: str, secret: str) -> None:
    with pytest.raises(ConfigError) as info:
        objstore.check_url(f"{scheme}://reader:{secret}@bucket/dir/a.csv")
    assert secret not in str(info.value)


@given(scheme=SCHEME, param=PARAM, secret=SECRET)
def test_a_credential_in_the_query_is_refused_and_not_echoed(
    scheme: str, param: str, secret: str
) -> None:
    with pytest.raises(ConfigError) as info:
        objstore.check_url(f"{scheme}://bucket/a.csv?versionId=3&{param}={secret}")
    assert secret not in str(info.value)


@given(scheme=SCHEME, key=st.text(string.ascii_letters + string.digits + "/-_.*", min_size=1))
def test_plain_object_urls_pass(scheme: str, key: str) -> None:
    url = f"{scheme}://bucket/{key}?versionId=42"
    objstore.check_url(url)
    assert objstore.is_remote(url)


@given(path=st.text(min_size=1).filter(lambda p: "://" not in p))
def test_paths_without_a_scheme_are_local(path: str) -> None:
    assert not objstore.is_remote(path)


def test_unknown_schemes_are_local_paths() -> None:
    assert not objstore.is_remote("ftp://host/a.csv")
    assert not objstore.is_remote("file:///tmp/a.csv")
