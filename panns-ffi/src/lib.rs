//! The C ABI of panns (`libpanns.so`, `libpanns.a`, `include/panns.h`).
