//! The seeding command builds the article's starting point and writes a manifest that the
//! validator accepts, with the emulator's real ids.

use crate::emulator::Emulator;

#[test]
fn seeded_starting_point_yields_a_valid_manifest_with_real_ids() {
    let emu = Emulator::start();
    let seeded = emu.seed(&[]);
    let out = emu.reconcile(&["validate", "-f", seeded.manifest.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&seeded.manifest).unwrap()).unwrap();
    let ids = &seeded.ids;
    assert_eq!(m["vpc"], ids["vpc"]);
    assert_eq!(
        m["security_groups"]["backend"]["existing"],
        ids["security_group"]
    );
    assert_eq!(m["load_balancer"]["subnets"], ids["subnets"]);
    assert_eq!(m["target_groups"]["app"]["targets"], ids["instances"]);
}

#[test]
fn each_test_gets_its_own_emulator_state() {
    let a = Emulator::start();
    let b = Emulator::start();
    assert_ne!(a.url, b.url);
    let sa = a.seed(&[]);
    // Seeding refuses a state that is already seeded, so a second seed into `b` working
    // shows that `a`'s resources are not visible there.
    let sb = b.seed(&[]);
    assert_ne!(sa.ids["vpc"], sb.ids["vpc"]);
}
