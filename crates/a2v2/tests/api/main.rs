//! Black-box tests: the real binary, a temp data directory, HTTP.

mod harness;
