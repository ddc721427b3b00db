//! Tests (see bottom of file).
