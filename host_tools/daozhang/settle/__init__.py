"""Settlement files: import (generic CSV, UnionPay-style fixed-width), timing policy, calendar.

Public surface: `import_files` / `import_file` (atomic, idempotent), `list_imports`,
`WorkingCalendar`, `Policy`/`load_policies`. See README.md for the design requirements.
"""
