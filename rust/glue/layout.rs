// SPDX-License-Identifier: GPL-2.0

//! Load-time check that Rust and C agree on the layout of the C structures we use.
//!
//! bindgen generates the Rust view from the same headers with clang; the kernel
//! is built with gcc. Each module lists facts (`sizeof`, `offsetof`) as Rust
//! computes them, and its C helpers return gcc's value for the same fact.

use kernel::prelude::*;

/// One layout fact: its id in the module's C enum, Rust's value, and a name.
pub(crate) type Fact = (u32, usize, &'static str);

/// Compares every fact with `c_value` (the C compiler's view); refuses to load on
/// any difference, naming each one.
pub(crate) fn check(facts: &[Fact], c_value: impl Fn(u32) -> usize) -> Result {
    let mut ok = true;
    for &(id, rust, name) in facts {
        let c = c_value(id);
        if c != rust {
            pr_err!("layout mismatch: {}: C says {}, Rust says {}\n", name, c, rust);
            ok = false;
        }
    }
    if ok {
        Ok(())
    } else {
        Err(EINVAL)
    }
}
