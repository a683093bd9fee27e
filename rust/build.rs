//! Names, once, the machines `read_cached` serves (`cfg(read_cached)`): 64-bit Linux, where
//! `openat2` has one syscall number the pure twin can call too.

const ARCHES: [&str; 6] = [
    "x86_64",
    "aarch64",
    "riscv64",
    "powerpc64",
    "s390x",
    "loongarch64",
];

fn main() {
    println!("cargo::rustc-check-cfg=cfg(read_cached)");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os == "linux" && ARCHES.contains(&arch.as_str()) {
        println!("cargo::rustc-cfg=read_cached");
    }
}
