//! Black-box tests: the real binary, a temp data directory, HTTP.

// A shared toolbox: not every test file uses every helper.
#[allow(dead_code)]
mod harness;

mod contacts;
