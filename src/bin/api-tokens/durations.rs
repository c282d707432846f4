//! Durations as an operator types them: `90d`, `12h`, `30m`, `45s`, `2w`.

use std::time::Duration;

/// Reads `<whole number><unit>`, the unit one of `s`, `m`, `h`, `d`, `w`;
/// `0` alone is zero. Used as a clap value parser, so its error is the
/// message clap shows.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    const HELP: &str = "a duration is a whole number and a unit: 45s, 30m, 12h, 90d or 2w";
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| HELP.to_owned())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| HELP.to_owned())?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(HELP.to_owned()),
    };
    number
        .checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text} is longer than any token may live"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_unit_and_refuses_anything_else() {
        assert_eq!(parse("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        for bad in [
            "",
            "d",
            "12",
            "1.5h",
            "-1d",
            "1 d",
            "1dd",
            "1y",
            "99999999999999999999w",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
