# QuecPython `ussl`.
from typing import Any

def wrap_socket(sock: Any, server_hostname: str | None = None, **kwargs: Any) -> Any: ...
