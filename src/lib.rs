//! Facade package: hosts the workspace integration tests in `tests/`.
