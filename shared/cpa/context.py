"""A click's context: the optional `/sample` fields that say where the click comes from. Pure.

- geo: the country, ISO 3166-1 alpha-2 (`FR`; lower case accepted, stored upper case);
- device: desktop, mobile, tablet or other;
- os: the operating system (`android`, `ios`, `windows`; stored lower case);
- source: the traffic source or publisher id, case kept.

Values become keys of maps in Firestore (the offers' context counts, shared/cpa/context_counts.py),
so every value is a bounded plain string: letters, digits, `_` and `-`, never a `.`.
"""

import re

FEATURES = ("geo", "device", "os", "source")
DEVICES = ("desktop", "mobile", "tablet", "other")
# ISO 3166-1 alpha-2, the assigned codes (as the tz database's iso3166.tab lists them).
COUNTRIES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
    BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
    EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
    HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
    LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
    NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
    TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
    """.split()  # noqa: SIM905 (the list as iso3166.tab reads)
)
OS_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
SOURCE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def _text(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("must be a string")
    return str(value).strip()


def parse_geo(value) -> str:
    code = _text(value).upper()
    if code not in COUNTRIES:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code (FR, US, BR)")
    return code


def parse_device(value) -> str:
    device = _text(value).lower()
    if device not in DEVICES:
        raise ValueError(f"must be one of {', '.join(DEVICES)}")
    return device


def parse_os(value) -> str:
    name = _text(value).lower()
    if not OS_PATTERN.match(name):
        raise ValueError("must be 1 to 32 letters, digits, _ or - (android, ios, windows)")
    return name


def parse_source(value) -> str:
    source = _text(value)
    if not SOURCE_PATTERN.match(source):
        raise ValueError("must be 1 to 64 letters, digits, _ or -, starting with a letter or digit")
    return source


def of(values: dict) -> dict[str, str]:
    """The context fields that are set, in FEATURES order."""
    return {feature: values[feature] for feature in FEATURES if values.get(feature) is not None}
