# Puts this folder on sys.path (pytest's default "prepend" import mode), so the
# tests can `import app` whether pytest runs from here or from the repository root.
