"""The fleet console: a web application for fleet and support staff (issue 26).

`app.build_app(connect, secret)` is the ASGI application; `daozhang console` (commands/console.py)
opens the store, hands it `connect` and serves it with uvicorn. Nothing here opens a database
by URL: the command does, with the product's schema (this package sits below `daozhang.schema`,
which lists `tables.MIGRATIONS` among the product's components).
"""
