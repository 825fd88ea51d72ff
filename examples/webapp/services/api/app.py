"""Pricing service: turns order requests into priced quotes.

The HTTP layer (a few lines of WSGI at the bottom) is deliberately thin; the
logic lives in pure functions so that it can be tested without a server.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

SKU_PATTERN = re.compile(r"^[A-Z]{3}-\d{4}$")
MAX_QUANTITY = 1000


class ValidationError(ValueError):
    """A request the service refuses, with a message for the client."""


@dataclass(frozen=True)
class OrderLine:
    sku: str
    quantity: int
    unit_price: Decimal


def parse_price(text: str) -> Decimal:
    """Parse a price such as ``"12.50"`` or ``"1,299.00"`` into a Decimal with two places."""
    cleaned = text.strip().replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValidationError(f"not a price: {text!r}") from None
    if value < 0:
        raise ValidationError(f"negative price: {text!r}")
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def validate_sku(sku: str) -> str:
    """Return the SKU upper-cased, or raise ValidationError when it is not like ``ABC-1234``."""
    normalized = sku.strip().upper()
    if not SKU_PATTERN.match(normalized):
        raise ValidationError(f"bad SKU: {sku!r}")
    return normalized


def parse_order(payload: dict) -> list[OrderLine]:
    """Validate an order payload ``{"lines": [{"sku", "quantity", "unit_price"}]}``."""
    lines = payload.get("lines")
    if not isinstance(lines, list) or not lines:
        raise ValidationError("an order needs a non-empty 'lines' list")
    result = []
    for number, line in enumerate(lines, start=1):
        try:
            quantity = int(line["quantity"])
            sku = validate_sku(str(line["sku"]))
            price = parse_price(str(line["unit_price"]))
        except KeyError as exc:
            raise ValidationError(f"line {number}: missing {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"line {number}: {exc}") from None
        if not 1 <= quantity <= MAX_QUANTITY:
            raise ValidationError(f"line {number}: quantity must be 1..{MAX_QUANTITY}")
        result.append(OrderLine(sku, quantity, price))
    return result


def quote(lines: list[OrderLine], discount_percent: int = 0) -> dict[str, str]:
    """Price an order: subtotal, discount and total, as strings with two decimals."""
    if not 0 <= discount_percent <= 100:
        raise ValidationError("discount must be between 0 and 100")
    subtotal = sum((line.unit_price * line.quantity for line in lines), Decimal("0"))
    discount = (subtotal * discount_percent / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return {"subtotal": f"{subtotal:.2f}", "discount": f"{discount:.2f}", "total": f"{subtotal - discount:.2f}"}


def application(environ, start_response):
    """WSGI entry point: ``POST /quote`` with a JSON order."""
    if environ.get("PATH_INFO") != "/quote" or environ.get("REQUEST_METHOD") != "POST":
        return _respond(start_response, "404 Not Found", {"error": "not found"})
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = json.loads(environ["wsgi.input"].read(length) or b"{}")
        body = quote(parse_order(payload), int(payload.get("discount_percent", 0)))
    except (ValidationError, ValueError) as exc:
        return _respond(start_response, "400 Bad Request", {"error": str(exc)})
    return _respond(start_response, "200 OK", body)


def _respond(start_response, status: str, body: dict) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]
