"""The rules: pure functions and types, sizes and documents in, predictions and sentences out.

Nothing here does I/O or imports anything of oomlab outside this package."""
