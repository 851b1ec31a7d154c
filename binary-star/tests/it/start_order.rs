//! The pair settles whatever the start order: primary ACTIVE, backup PASSIVE, clients served
//! by the primary.

use crate::util::*;
use common::testkit::Proc;

fn serves_from_the_primary(ep: &Endpoints, primary: &mut Proc, backup: &mut Proc) {
    primary.wait_for("I: state ACTIVE", WAIT);
    backup.wait_for("I: state PASSIVE", WAIT);
    let mut c = client(ep, 5, 0);
    let s = summary(&mut c, WAIT);
    assert_all_answered(&s, 5);
    assert_eq!(c.count("failover to"), 0, "{:?}", c.lines());
    assert_eq!(s.retries, 0);
    assert_eq!(backup.count("I: state ACTIVE"), 0);
}

#[test]
fn backup_first() {
    let ep = Endpoints::new();
    let mut b = backup(&ep);
    // Let the backup run alone past its peer expiry: it must still wait for the primary.
    b.wait_for("peer silent", WAIT);
    let mut p = primary(&ep);
    serves_from_the_primary(&ep, &mut p, &mut b);
}

#[test]
fn primary_first() {
    let ep = Endpoints::new();
    let mut p = primary(&ep);
    p.wait_for("peer silent", WAIT);
    let mut b = backup(&ep);
    serves_from_the_primary(&ep, &mut p, &mut b);
}

#[test]
fn both_at_once() {
    let ep = Endpoints::new();
    let mut p = primary(&ep);
    let mut b = backup(&ep);
    serves_from_the_primary(&ep, &mut p, &mut b);
}
