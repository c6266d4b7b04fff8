//! A small hostile-file campaign in the test suite (the example runs a large one):
//! no mutated file may panic, break an invariant, or let a damaged row win.

mod common {
    pub mod campaign;
}

#[test]
fn mutated_files_never_panic_or_mislead() {
    let t = common::campaign::run(300, 7);
    eprintln!("{t}");
    assert!(t.clean(), "{t}");
    // The campaign must exercise both outcomes, or it tests nothing.
    assert!(t.refused > 100 && t.opened > 100, "{t}");
    assert!(t.searches > 1000, "{t}");
}
