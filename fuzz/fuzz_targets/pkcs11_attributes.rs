#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = officiant_fuzz::pkcs11_attributes(data);
});
