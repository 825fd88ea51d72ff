def login(user, password):
    return user == "admin" and password == "secret"


def logout(user):
    return True
