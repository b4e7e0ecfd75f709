"""Customer records as a CRM export would hold them: names, contacts, consent, tiers.

Contacts are deliberately messy but valid (phones as ``+86 138 1234 5678`` or
``0086 13812345678``, e-mails with capitals and stray spaces) so ingest's
normalisation has work to do. Phones, e-mails and WeChat ids are unique per
customer after normalisation, so identity resolution never merges two people.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from perennial.demo.calendar import DemandCalendar
from perennial.demo.fixed_width import (
    digits,
    hex_digits,
    iso_dates,
    iso_utc,
    join_columns,
    mix_bits,
    scramble,
    strings_from_bytes,
)
from perennial.demo.population import ACQUISITION_CHANNELS, Population
from perennial.schema.tables import TABLES

__all__ = ["customer_records"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_SURNAMES = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
    ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"),
    ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"), ("胡", "hu"),
    ("郭", "guo"), ("何", "he"), ("林", "lin"), ("罗", "luo"), ("高", "gao"),
)  # fmt: skip
_GIVEN_NAMES = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"),
    ("丽", "li"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"),
    ("艳", "yan"), ("杰", "jie"), ("涛", "tao"), ("明", "ming"), ("超", "chao"),
    ("秀英", "xiuying"), ("欣怡", "xinyi"), ("子轩", "zixuan"), ("浩然", "haoran"),
    ("雨桐", "yutong"), ("思远", "siyuan"), ("佳怡", "jiayi"), ("俊杰", "junjie"),
)  # fmt: skip
# Region, its time zone, relative weight.
_REGIONS = (
    ("广东", "Asia/Shanghai", 12.0), ("上海", "Asia/Shanghai", 9.0),
    ("北京", "Asia/Shanghai", 8.0), ("浙江", "Asia/Shanghai", 8.0),
    ("江苏", "Asia/Shanghai", 8.0), ("四川", "Asia/Shanghai", 6.0),
    ("山东", "Asia/Shanghai", 6.0), ("湖北", "Asia/Shanghai", 5.0),
    ("福建", "Asia/Shanghai", 4.0), ("河南", "Asia/Shanghai", 4.0),
    ("湖南", "Asia/Shanghai", 4.0), ("陕西", "Asia/Shanghai", 3.0),
    ("天津", "Asia/Shanghai", 3.0), ("重庆", "Asia/Shanghai", 3.0),
    ("香港", "Asia/Hong_Kong", 2.0), ("Singapore", "Asia/Singapore", 1.0),
    ("California", "America/Los_Angeles", 0.7), ("London", "Europe/London", 0.5),
)  # fmt: skip
_OVERSEAS_FROM = 16  # regions from here on write their names in pinyin
_MOBILE_PREFIXES = np.array(
    [130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 155, 156, 157, 158, 159,
     166, 176, 177, 178, 180, 181, 182, 183, 185, 186, 187, 188, 189, 198, 199]
)  # fmt: skip
_EMAIL_DOMAINS = ("qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com",
                  "foxmail.com", "hotmail.com")  # fmt: skip
_EMAIL_DOMAIN_WEIGHTS = np.array([0.35, 0.2, 0.08, 0.1, 0.07, 0.05, 0.05, 0.1])
_MEMBER_LEVELS = ("bronze", "silver", "gold", "platinum")
_MEMBER_THRESHOLDS = np.array([25.0, 80.0, 200.0])  # expected CNY per week


def _pick(options: tuple[str, ...], index: IntArray) -> pa.Array:
    return pa.array(options).take(pa.array(index))


def _weighted(rng: np.random.Generator, weights: npt.ArrayLike, count: int) -> IntArray:
    p = np.asarray(weights, dtype=np.float64)
    return rng.choice(p.shape[0], size=count, p=p / p.sum()).astype(np.int64)


def _null_where(values: pa.Array, missing: BoolArray) -> pa.Array:
    return pc.if_else(pa.array(missing), pa.scalar(None, values.type), values)


def _boolean_consent(rng: np.random.Generator, count: int, yes: float, no: float) -> pa.Array:
    draw = rng.random(count)
    return pa.array(draw < yes, mask=draw >= yes + no)


def customer_records(
    rng: np.random.Generator,
    population: Population,
    calendar: DemandCalendar,
    customer_ids: pa.Array,
) -> pa.Table:
    """The block's customers with the canonical ``customers`` columns, as text for CSV."""
    count = population.size
    numbers = population.numbers
    surname = _weighted(rng, np.linspace(3.0, 1.0, len(_SURNAMES)), count)
    given = rng.integers(0, len(_GIVEN_NAMES), count)
    region = _weighted(rng, [w for _, _, w in _REGIONS], count)
    overseas = region >= _OVERSEAS_FROM
    surname_pinyin = _pick(tuple(p for _, p in _SURNAMES), surname)
    given_pinyin = _pick(tuple(p for _, p in _GIVEN_NAMES), given)
    chinese_name = join_columns(
        _pick(tuple(c for c, _ in _SURNAMES), surname),
        _pick(tuple(c for c, _ in _GIVEN_NAMES), given),
    )
    pinyin_name = join_columns(
        pc.utf8_capitalize(given_pinyin), " ", pc.utf8_capitalize(surname_pinyin)
    )
    acquisition = population.acquisition_channel
    has_wechat = (acquisition == ACQUISITION_CHANNELS.index("mini_program")) | (
        rng.random(count) < 0.55
    )
    signup_seconds = calendar.epoch_seconds(population.signup_days)
    columns = {
        "customer_id": customer_ids,
        "created_at": iso_utc(signup_seconds),
        "name": pc.if_else(pa.array(overseas), pinyin_name, chinese_name),
        "phone": _null_where(_phones(rng, numbers), rng.random(count) < 0.05),
        "email": _null_where(
            _emails(rng, numbers, surname_pinyin, given_pinyin), rng.random(count) < 0.2
        ),
        "birthday": _birthdays(rng, signup_seconds),
        "gender": _null_where(
            _pick(("female", "male"), (rng.random(count) < 0.45).astype(np.int64)),
            rng.random(count) < 0.05,
        ),
        "region": _pick(tuple(r for r, _, _ in _REGIONS), region),
        "acquisition_channel": _pick(ACQUISITION_CHANNELS, acquisition),
        "timezone": _pick(tuple(z for _, z, _ in _REGIONS), region),
        "wechat_openid": _null_where(_wechat_ids(rng, numbers, 15_485_863), ~has_wechat),
        "wechat_unionid": _null_where(
            _wechat_ids(rng, numbers, 32_452_843), ~has_wechat | (rng.random(count) < 0.2)
        ),
        "consent_email": _boolean_consent(rng, count, 0.8, 0.12),
        "consent_sms": _boolean_consent(rng, count, 0.85, 0.1),
        "consent_push": _boolean_consent(rng, count, 0.7, 0.2),
        "consent_wechat": _boolean_consent(rng, count, 0.85, 0.08),
        "attributes": _attributes(rng, population),
    }
    names = TABLES["customers"].column_names
    return pa.Table.from_arrays([columns[name] for name in names], names=list(names))


def _phones(rng: np.random.Generator, numbers: IntArray) -> pa.Array:
    """Valid mainland mobiles in four spellings; the last eight digits are unique."""
    count = numbers.shape[0]
    prefix = digits(_MOBILE_PREFIXES[rng.integers(0, _MOBILE_PREFIXES.shape[0], count)], 3)
    body = digits(scramble(numbers, 10**8, 73_939_133, 12_345_678), 8)
    plain = strings_from_bytes(np.hstack([prefix, body]))
    spaced = strings_from_bytes(
        np.hstack([_ascii("+86 ", count), prefix, _ascii(" ", count), body[:, :4],
                   _ascii(" ", count), body[:, 4:]])
    )  # fmt: skip
    dashed = strings_from_bytes(
        np.hstack([prefix, _ascii("-", count), body[:, :4], _ascii("-", count), body[:, 4:]])
    )
    international = strings_from_bytes(np.hstack([_ascii("0086 ", count), prefix, body]))
    style = rng.random(count)
    phone = pc.if_else(pa.array(style < 0.45), plain, spaced)
    phone = pc.if_else(pa.array(style >= 0.65), dashed, phone)
    return pc.if_else(pa.array(style >= 0.85), international, phone)


def _ascii(text: str, rows: int) -> npt.NDArray[np.uint8]:
    row = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.broadcast_to(row, (rows, row.shape[0]))


def _emails(
    rng: np.random.Generator, numbers: IntArray, surname: pa.Array, given: pa.Array
) -> pa.Array:
    """QQ numbers at qq.com, pinyin plus a unique number elsewhere; some capitals and spaces."""
    count = numbers.shape[0]
    unique = strings_from_bytes(digits(scramble(numbers, 10**8, 48_271_337, 7_654_321), 8))
    domain_index = _weighted(rng, _EMAIL_DOMAIN_WEIGHTS, count)
    domain = _pick(_EMAIL_DOMAINS, domain_index)
    local = pc.if_else(
        pa.array(domain_index == 0), join_columns("1", unique), join_columns(surname, given, unique)
    )
    style = rng.random(count)
    local = pc.if_else(pa.array(style < 0.1), pc.utf8_capitalize(local), local)
    domain = pc.if_else(pa.array((style >= 0.1) & (style < 0.15)), pc.utf8_upper(domain), domain)
    email = join_columns(local, "@", domain)
    padded = join_columns(" ", email, " ")
    return pc.if_else(pa.array(rng.random(count) < 0.1), padded, email)


def _birthdays(rng: np.random.Generator, signup_seconds: IntArray) -> pa.Array:
    """Adults aged 18-65 at sign-up; a few with the placeholder year 1900; some unknown."""
    count = int(signup_seconds.shape[0])
    age_days = rng.uniform(18.0, 65.0, count) * 365.25
    days = (signup_seconds // 86_400 - age_days).astype(np.int64)
    placeholder = rng.random(count) < 0.03
    days_into_year = days - np.floor((days + 0.5) / 365.2425) * 365.2425
    days = np.where(placeholder, -25_567 + np.clip(days_into_year, 0, 364), days).astype(np.int64)
    return _null_where(iso_dates(days), rng.random(count) < 0.1)


def _wechat_ids(rng: np.random.Generator, numbers: IntArray, key: int) -> pa.Array:
    """28-character ids starting with ``o``, unique through their first 11 hex digits."""
    unique = hex_digits(mix_bits(numbers, 44, key), 11)
    filler = hex_digits(rng.integers(0, 2**60, numbers.shape[0]), 15)
    count = numbers.shape[0]
    return strings_from_bytes(np.hstack([_ascii("oX", count), unique, filler]))


def _attributes(rng: np.random.Generator, population: Population) -> pa.Array:
    """``{"member_level": ...}`` from the customer's expected weekly spend, or empty."""
    weekly_value = population.purchase_rate * population.mean_spend
    level = np.searchsorted(_MEMBER_THRESHOLDS, weekly_value).astype(np.int64)
    text = join_columns('{"member_level":"', _pick(_MEMBER_LEVELS, level), '"}')
    return _null_where(text, rng.random((population.size,)) < 0.15)
