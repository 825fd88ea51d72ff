def invoice(customer, amount):
    return {"customer": customer, "amount": amount}
