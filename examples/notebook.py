# %% [markdown]
# # clarify-auth in a notebook
#
# Each `# %%` block is a cell (VS Code, Jupyter with jupytext, Spyder). Make
# the session once, at the top; it can stay open overnight: tokens renew
# themselves ahead of expiry, and a token that the server stops accepting
# is replaced after the first 401.

# %%
import logging

import clarify_auth

# Optional: see when tokens are fetched (never their values).
logging.basicConfig(format="%(asctime)s %(name)s %(message)s")
logging.getLogger("clarify_auth").setLevel(logging.INFO)

session = clarify_auth.ClarifySession()  # finds ./clarify-credentials.json
session

# %%
items = session.rpc("clarify.selectItems", {"query": {"limit": 10}})
items

# %%
# What the current token looks like: its type, scope and lifetime. The
# token itself prints as '**********'.
token = session.authenticator.token()
print(token)

# %%
# Hours later, the same session still works: nothing to re-run.
session.rpc("clarify.selectItems", {"query": {"limit": 1}})

# %%
session.close()
