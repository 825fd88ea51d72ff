import io
import json
from decimal import Decimal

import pytest

from app import ValidationError, application, parse_order, parse_price, quote, validate_sku


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12.5", Decimal("12.50")), (" 1,299.00 ", Decimal("1299.00")), ("0.005", Decimal("0.01"))],
)
def test_parse_price(text, expected):
    assert parse_price(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "-1"])
def test_parse_price_rejects(text):
    with pytest.raises(ValidationError):
        parse_price(text)


def test_validate_sku_normalizes_case():
    assert validate_sku(" abc-1234 ") == "ABC-1234"


def test_validate_sku_rejects_bad_shape():
    with pytest.raises(ValidationError, match="bad SKU"):
        validate_sku("AB-12")


def test_quote_applies_discount():
    lines = parse_order({"lines": [{"sku": "ABC-0001", "quantity": 3, "unit_price": "10.00"}]})
    assert quote(lines, discount_percent=10) == {"subtotal": "30.00", "discount": "3.00", "total": "27.00"}


def test_parse_order_names_the_bad_line():
    payload = {"lines": [{"sku": "ABC-0001", "quantity": 1, "unit_price": "1"}, {"sku": "ABC-0002"}]}
    with pytest.raises(ValidationError, match="line 2: missing 'quantity'"):
        parse_order(payload)


def test_wsgi_quote_round_trip():
    body = json.dumps({"lines": [{"sku": "xyz-9999", "quantity": 2, "unit_price": "2.25"}]}).encode()
    environ = {
        "PATH_INFO": "/quote",
        "REQUEST_METHOD": "POST",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    statuses = []
    response = application(environ, lambda status, headers: statuses.append(status))
    assert statuses == ["200 OK"]
    assert json.loads(b"".join(response)) == {"subtotal": "4.50", "discount": "0.00", "total": "4.50"}
