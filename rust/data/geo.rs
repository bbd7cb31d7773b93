//! `geopoint` (formats `default` "lon, lat", `array` "[lon, lat]", `object`
//! `{"lon": .., "lat": ..}`) and `geojson` (a JSON object whose `type` is a GeoJSON type).
//! Geopoints are stored normalized as `lon,lat`; GeoJSON as its JSON text.

use serde_json::Value as Json;

/// The format of a geopoint field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GeoFormat {
    Default,
    Array,
    Object,
}

const BAD: &str = "is not a geopoint (longitude -180..180, latitude -90..90)";

fn coord(v: &Json) -> Option<f64> {
    match v {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => super::coerce::parse_number(s).ok(),
        _ => None,
    }
}

fn checked(lon: f64, lat: f64) -> Result<String, &'static str> {
    if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
        return Err(BAD);
    }
    Ok(format!("{lon},{lat}"))
}

/// Parse a geopoint in `format`; returns `lon,lat`.
pub fn parse_geopoint(s: &str, format: GeoFormat) -> Result<String, &'static str> {
    match format {
        GeoFormat::Default => {
            let (lon, lat) = s.split_once(',').ok_or(BAD)?;
            let lon = super::coerce::parse_number(lon.trim()).map_err(|_| BAD)?;
            let lat = super::coerce::parse_number(lat.trim()).map_err(|_| BAD)?;
            checked(lon, lat)
        }
        GeoFormat::Array => match serde_json::from_str::<Json>(s) {
            Ok(Json::Array(a)) if a.len() == 2 => {
                checked(coord(&a[0]).ok_or(BAD)?, coord(&a[1]).ok_or(BAD)?)
            }
            _ => Err(BAD),
        },
        GeoFormat::Object => match serde_json::from_str::<Json>(s) {
            Ok(Json::Object(o)) if o.len() == 2 => checked(
                o.get("lon").and_then(coord).ok_or(BAD)?,
                o.get("lat").and_then(coord).ok_or(BAD)?,
            ),
            _ => Err(BAD),
        },
    }
}

const GEOJSON_TYPES: [&str; 9] = [
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
    "Feature",
    "FeatureCollection",
];

/// Check a GeoJSON object (its `type`, and `coordinates`/`geometries`/`features` present).
pub fn check_geojson(s: &str) -> Result<(), &'static str> {
    const NOT: &str = "is not a GeoJSON object";
    let Ok(Json::Object(o)) = serde_json::from_str::<Json>(s) else {
        return Err(NOT);
    };
    let t = o.get("type").and_then(Json::as_str).ok_or(NOT)?;
    let needs = match t {
        "GeometryCollection" => "geometries",
        "Feature" => "geometry",
        "FeatureCollection" => "features",
        t if GEOJSON_TYPES.contains(&t) => "coordinates",
        _ => return Err(NOT),
    };
    if o.contains_key(needs) {
        Ok(())
    } else {
        Err(NOT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geopoints() {
        assert_eq!(
            parse_geopoint("90, 45.5", GeoFormat::Default).unwrap(),
            "90,45.5"
        );
        assert_eq!(parse_geopoint("[-1, 2]", GeoFormat::Array).unwrap(), "-1,2");
        assert_eq!(
            parse_geopoint(r#"{"lon": 1, "lat": -2}"#, GeoFormat::Object).unwrap(),
            "1,-2"
        );
        for bad in ["181, 0", "0, 91", "1", "a, b", ""] {
            assert!(parse_geopoint(bad, GeoFormat::Default).is_err(), "{bad}");
        }
        assert!(parse_geopoint("[1]", GeoFormat::Array).is_err());
        assert!(parse_geopoint(r#"{"lon": 1}"#, GeoFormat::Object).is_err());
    }

    #[test]
    fn geojson() {
        assert!(check_geojson(r#"{"type": "Point", "coordinates": [1, 2]}"#).is_ok());
        assert!(check_geojson(r#"{"type": "Feature", "geometry": null}"#).is_ok());
        assert!(check_geojson(r#"{"type": "Point"}"#).is_err());
        assert!(check_geojson(r#"{"type": "Circle", "coordinates": []}"#).is_err());
        assert!(check_geojson("[1, 2]").is_err());
    }
}
