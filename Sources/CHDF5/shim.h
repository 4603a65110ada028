// HDF5 C API plus static inline accessors for the macros Swift cannot import
// (H5T_NATIVE_FLOAT and friends expand to H5open() + a global), and a few small
// helpers whose C signatures change between HDF5 1.10, 1.12 and 1.14 (link iteration,
// variable-length reclaim), so the Swift side compiles against any of them.
// Nothing here is public Swift API: WeightIO wraps it in `HDF5File`.
#include <hdf5.h>
#include <string.h>

static inline hid_t chdf5_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t chdf5_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t chdf5_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t chdf5_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t chdf5_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t chdf5_native_uint16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t chdf5_c_s1(void) { return H5T_C_S1; }
/// File-side (little-endian) types Distillery writes.
static inline hid_t chdf5_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t chdf5_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t chdf5_std_u8le(void) { return H5T_STD_U8LE; }
static inline hid_t chdf5_p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t chdf5_p_file_create(void) { return H5P_FILE_CREATE; }
static inline hid_t chdf5_p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t chdf5_p_link_create(void) { return H5P_LINK_CREATE; }
static inline hid_t chdf5_p_default(void) { return H5P_DEFAULT; }
static inline hid_t chdf5_s_all(void) { return H5S_ALL; }
/// Silences HDF5's automatic error stack printing; Distillery reports errors itself.
static inline void chdf5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/// Collects the innermost (most specific) description on the current error stack.
static herr_t chdf5__error_walker(unsigned n, const H5E_error2_t *err, void *data) {
    char *out = (char *)data;
    if (err && err->desc && err->desc[0]) { strncpy(out, err->desc, 255); out[255] = 0; }
    (void)n;
    return 0;
}
/// Writes the most specific message of the current HDF5 error stack into `buffer` (256 bytes).
static inline void chdf5_last_error(char *buffer) {
    buffer[0] = 0;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, chdf5__error_walker, buffer);
}

/// Called once per link name; `is_hard` is 1 for hard links (datasets, groups).
typedef void (*chdf5_link_fn)(const char *name, int is_hard, void *context);
typedef struct { chdf5_link_fn fn; void *context; } chdf5__link_visit;
static herr_t chdf5__link_op(hid_t group, const char *name, const H5L_info_t *info, void *data) {
    chdf5__link_visit *visit = (chdf5__link_visit *)data;
    visit->fn(name, info->type == H5L_TYPE_HARD, visit->context);
    (void)group;
    return 0;
}
/// Lists the links of a group in creation order (when tracked) or name order.
static inline herr_t chdf5_iterate_links(hid_t group, int by_creation_order, chdf5_link_fn fn, void *context) {
    chdf5__link_visit visit = { fn, context };
    hsize_t index = 0;
    return H5Literate(group, by_creation_order ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME, H5_ITER_INC,
                      &index, chdf5__link_op, &visit);
}

/// Kind of the object at `name` relative to `location`: 0 group, 1 dataset, 2 other, -1 error.
static inline int chdf5_object_kind(hid_t location, const char *name) {
    hid_t object = H5Oopen(location, name, H5P_DEFAULT);
    if (object < 0) return -1;
    H5I_type_t type = H5Iget_type(object);
    H5Oclose(object);
    if (type == H5I_GROUP) return 0;
    if (type == H5I_DATASET) return 1;
    return 2;
}

/// Frees the strings HDF5 allocated while reading variable-length data into `buffer`.
static inline herr_t chdf5_vlen_reclaim(hid_t memory_type, hid_t space, void *buffer) {
#if H5_VERSION_GE(1, 12, 0)
    return H5Treclaim(memory_type, space, H5P_DEFAULT, buffer);
#else
    return H5Dvlen_reclaim(memory_type, space, H5P_DEFAULT, buffer);
#endif
}

/// `H5T_VARIABLE`: the size that marks a variable-length string type.
static inline size_t chdf5_variable_size(void) { return H5T_VARIABLE; }
/// File access flags (they expand to H5check()/H5open() calls, which Swift cannot import).
static inline unsigned chdf5_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned chdf5_acc_trunc(void) { return H5F_ACC_TRUNC; }
