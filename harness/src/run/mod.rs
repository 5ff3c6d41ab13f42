//! The script runner (under construction).
