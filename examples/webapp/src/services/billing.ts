export interface LineItem {
  sku: string;
  unitPriceCents: number;
  quantity: number;
}

export interface Invoice {
  subtotalCents: number;
  discountCents: number;
  taxCents: number;
  totalCents: number;
}

/** VAT rates by country code; countries not listed are not taxed. */
export const TAX_RATES: Record<string, number> = {
  DE: 0.19,
  FR: 0.2,
  NL: 0.21,
};

/** Compute an invoice. `discountPercent` applies to the subtotal, before tax. */
export function computeInvoice(items: LineItem[], country: string, discountPercent = 0): Invoice {
  if (discountPercent < 0 || discountPercent > 100) {
    throw new RangeError(`discount must be between 0 and 100, got ${discountPercent}`);
  }
  const subtotalCents = items.reduce((sum, item) => {
    if (item.quantity < 0 || !Number.isInteger(item.quantity)) {
      throw new RangeError(`bad quantity ${item.quantity} for ${item.sku}`);
    }
    return sum + item.unitPriceCents * item.quantity;
  }, 0);
  const discountCents = Math.round((subtotalCents * discountPercent) / 100);
  const rate = TAX_RATES[country.toUpperCase()] ?? 0;
  const taxCents = Math.round((subtotalCents - discountCents) * rate);
  return {
    subtotalCents,
    discountCents,
    taxCents,
    totalCents: subtotalCents - discountCents + taxCents,
  };
}

/** Format cents as a currency string, e.g. 123456 -> "1,234.56". */
export function formatCents(cents: number): string {
  const sign = cents < 0 ? "-" : "";
  const abs = Math.abs(cents);
  const whole = Math.floor(abs / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${sign}${whole}.${(abs % 100).toString().padStart(2, "0")}`;
}
