//! `cfg(qdrant_server)` when `LECTERN_TEST_QDRANT_URL` names a Qdrant server, so that the
//! server half of the contract tests runs there and shows as ignored, with the reason,
//! everywhere else (instead of passing without having run).

fn main() {
    println!("cargo::rerun-if-env-changed=LECTERN_TEST_QDRANT_URL");
    println!("cargo::rustc-check-cfg=cfg(qdrant_server)");
    if std::env::var_os("LECTERN_TEST_QDRANT_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=qdrant_server");
    }
}
