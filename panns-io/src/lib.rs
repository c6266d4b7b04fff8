//! Dataset readers (CSV, raw f32, fvecs/bvecs/ivecs, NumPy .npy, HDF5) and the panns index file format.
