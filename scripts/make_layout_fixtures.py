#!/usr/bin/env python3
"""Generate the WeightIO layout fixtures in Tests/Fixtures/weightio/ (deterministic from a seed).

One tiny BERT-shaped state dict (vocab 50, hidden 8, 2 layers, 2 heads, intermediate 16,
10 positions, 2 token types, pooler, 3-label classifier), keyed like HF
`BertForSequenceClassification.state_dict()` (`bert.`-prefixed, plus the int64
`bert.embeddings.position_ids` buffer), written in every layout WeightIO reads:

  model.safetensors        HF PyTorch keys, F32 (+ I64 position_ids)
  model_f16.safetensors    the same values rounded to F16
  model_bf16.safetensors   the same values truncated to BF16 (hand-written: numpy has no bf16)
  flat.h5                  HF keys as root datasets (float32, + int64 position_ids)
  flat_f16.h5              HF keys as root datasets stored as float16
  nested.h5                HF keys split into groups: bert/encoder/layer/0/attention/self/query/weight
  tf_model.h5              HF TensorFlow TFBertForSequenceClassification as Keras 2 `save_weights`
                           writes it: root attrs layer_names/backend/keras_version, one group per
                           layer (bert, classifier, dropout_37) with attr weight_names, datasets at
                           <layer>/<weight name>, Dense kernels stored [in, out]
  reference.json           canonical names, shapes, float64 sums and a few element values
  strings.h5               string/scalar datasets and attributes for HDF5File tests
  bad_*.safetensors, not_hdf5.h5, bad_tf_missing_weight.h5   malformed inputs for error tests

Needs numpy, h5py, safetensors (no torch). Usage: python scripts/make_layout_fixtures.py [--seed N]
The Keras structure follows keras `save_weights_to_hdf5_group` / `save_attributes_to_hdf5_group`
(legacy hdf5_format.py) and the TF variable names of HF `modeling_tf_bert.py`.
"""
import argparse
import json
import struct
from pathlib import Path

import h5py
import numpy as np
from safetensors.numpy import save_file

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "weightio"
VOCAB, HIDDEN, LAYERS, INTERMEDIATE, POSITIONS, TYPES, LABELS = 50, 8, 2, 16, 10, 2, 3
TF_MODEL_NAME = "tf_bert_for_sequence_classification"  # Keras model name = snake_case of the TF class
TF_DROPOUT_LAYER = "dropout_37"                         # Keras auto-named dropout layer of the classifier


def make_state_dict(seed):
    """HF BertForSequenceClassification-style state dict: name -> float32 array ([out, in] Linear weights)."""
    rng = np.random.default_rng(seed)

    def rand(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    sd = {
        "bert.embeddings.word_embeddings.weight": rand(VOCAB, HIDDEN),
        "bert.embeddings.position_embeddings.weight": rand(POSITIONS, HIDDEN),
        "bert.embeddings.token_type_embeddings.weight": rand(TYPES, HIDDEN),
        "bert.embeddings.LayerNorm.weight": 1 + 0.1 * rand(HIDDEN),
        "bert.embeddings.LayerNorm.bias": 0.1 * rand(HIDDEN),
    }
    for i in range(LAYERS):
        p = f"bert.encoder.layer.{i}."
        for proj in ("query", "key", "value"):
            sd[p + f"attention.self.{proj}.weight"] = rand(HIDDEN, HIDDEN)
            sd[p + f"attention.self.{proj}.bias"] = rand(HIDDEN)
        sd[p + "attention.output.dense.weight"] = rand(HIDDEN, HIDDEN)
        sd[p + "attention.output.dense.bias"] = rand(HIDDEN)
        sd[p + "attention.output.LayerNorm.weight"] = 1 + 0.1 * rand(HIDDEN)
        sd[p + "attention.output.LayerNorm.bias"] = 0.1 * rand(HIDDEN)
        sd[p + "intermediate.dense.weight"] = rand(INTERMEDIATE, HIDDEN)
        sd[p + "intermediate.dense.bias"] = rand(INTERMEDIATE)
        sd[p + "output.dense.weight"] = rand(HIDDEN, INTERMEDIATE)
        sd[p + "output.dense.bias"] = rand(HIDDEN)
        sd[p + "output.LayerNorm.weight"] = 1 + 0.1 * rand(HIDDEN)
        sd[p + "output.LayerNorm.bias"] = 0.1 * rand(HIDDEN)
    sd["bert.pooler.dense.weight"] = rand(HIDDEN, HIDDEN)
    sd["bert.pooler.dense.bias"] = rand(HIDDEN)
    sd["classifier.weight"] = rand(LABELS, HIDDEN)
    sd["classifier.bias"] = rand(LABELS)
    return sd


def canonical(name):
    return name[len("bert."):] if name.startswith("bert.") else name


# PyTorch leaf -> TF leaf, per module kind (inverse of HF convert_tf_weight_name_to_pt_weight_name).
TF_LEAF = {"dense": {"weight": "kernel", "bias": "bias"},
           "LayerNorm": {"weight": "gamma", "bias": "beta"},
           "query": {"weight": "kernel", "bias": "bias"},
           "key": {"weight": "kernel", "bias": "bias"},
           "value": {"weight": "kernel", "bias": "bias"},
           "classifier": {"weight": "kernel", "bias": "bias"},
           "word_embeddings": {"weight": "weight"},
           "position_embeddings": {"weight": "embeddings"},
           "token_type_embeddings": {"weight": "embeddings"}}


def tf_weight(pt_name, value):
    """PyTorch key -> (Keras layer, TF weight name, stored value)."""
    parts = pt_name.split(".")
    module, leaf = parts[-2], parts[-1]
    tf_leaf = TF_LEAF[module][leaf]
    scopes = []
    i = 0
    while i < len(parts) - 1:  # `layer.N` becomes one `layer_._N` scope
        if parts[i] == "layer" and i + 1 < len(parts) - 1 and parts[i + 1].isdigit():
            scopes.append(f"layer_._{parts[i + 1]}")
            i += 2
        else:
            scopes.append(parts[i])
            i += 1
    layer = scopes[0]  # "bert" (TFBertMainLayer) or "classifier" (Dense)
    name = "/".join([TF_MODEL_NAME] + scopes + [tf_leaf]) + ":0"
    stored = value.T.copy() if tf_leaf == "kernel" else value
    return layer, name, stored


def write_keras_h5(path, sd, drop=None, extra_listed=None, fixed_length=True):
    """Write `sd` as Keras 2 `model.save_weights('tf_model.h5')` does for TFBertForSequenceClassification.

    With the h5py 2.x of that era a list of bytes became a fixed-length `|S` array (`fixed_length`);
    newer h5py stores it as variable-length strings. Readers must accept both.
    """
    as_attr = (lambda names: np.array(names) if names else []) if fixed_length else list
    layers = {"bert": [], TF_DROPOUT_LAYER: [], "classifier": []}
    for name, value in sd.items():
        if value.dtype != np.float32:
            continue  # PyTorch-only buffers (position_ids) do not exist in the TF model
        layer, tf_name, stored = tf_weight(name, value)
        layers[layer].append((tf_name, stored))
    with h5py.File(path, "w") as f:
        # save_attributes_to_hdf5_group: a list of bytes becomes a fixed-length string array
        f.attrs["layer_names"] = as_attr([n.encode("utf8") for n in ("bert", TF_DROPOUT_LAYER, "classifier")])
        f.attrs["backend"] = "tensorflow".encode("utf8")
        f.attrs["keras_version"] = "2.15.0".encode("utf8")
        for layer in sorted(layers):  # Keras sorts layer groups by name
            g = f.create_group(layer)
            weights = [(n, v) for n, v in layers[layer] if n != drop]
            names = [n.encode("utf8") for n, _ in weights]
            if extra_listed and layer == "bert":
                names.append(extra_listed.encode("utf8"))
            g.attrs["weight_names"] = as_attr(names)  # [] for Dropout -> empty float64 array, as in real files
            for n, v in weights:
                d = g.create_dataset(n, v.shape, dtype=v.dtype)
                d[...] = v


def safetensors_bytes(header, data):
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def write_bf16(path, sd):
    header, chunks, offset = {}, [], 0
    for name, value in sd.items():
        if value.dtype == np.float32:
            raw = (value.view(np.uint32) >> 16).astype("<u2").tobytes()  # truncate to bfloat16
            dtype = "BF16"
        else:
            raw, dtype = value.astype("<i8").tobytes(), "I64"
        header[name] = {"dtype": dtype, "shape": list(value.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    path.write_bytes(safetensors_bytes(header, b"".join(chunks)))


def write_bad_inputs(out):
    f32 = np.arange(6, dtype="<f4").tobytes()  # a [2, 3] float32 tensor, 24 bytes
    (out / "bad_truncated.safetensors").write_bytes(b"\x10\x00\x00")
    (out / "bad_header_past_end.safetensors").write_bytes(struct.pack("<Q", 1000) + b'{"a": 1}')
    (out / "bad_not_json.safetensors").write_bytes(struct.pack("<Q", 16) + b"this is not json")
    cases = {
        "bad_overlap": {"w1": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                        "w2": {"dtype": "F32", "shape": [2, 2], "data_offsets": [16, 32]}},
        "bad_out_of_bounds": {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [100, 124]}},
        "bad_unknown_dtype": {"w": {"dtype": "Q3", "shape": [2, 3], "data_offsets": [0, 24]}},
        "bad_shape_mismatch": {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}},
        "bad_reversed": {"w": {"dtype": "F32", "shape": [0], "data_offsets": [24, 0]}},
        "bad_shape_type": {"w": {"dtype": "F32", "shape": [2, "3"], "data_offsets": [0, 24]}},
    }
    for name, header in cases.items():
        data = f32 + f32[:8] if name == "bad_overlap" else f32
        (out / f"{name}.safetensors").write_bytes(safetensors_bytes(header, data))
    (out / "not_hdf5.h5").write_text("this is a text file, not HDF5\n")


def write_strings_h5(path):
    """String and scalar datasets/attributes in the encodings h5py and Keras produce."""
    with h5py.File(path, "w") as f:
        f.create_dataset("vlen", data=["alpha", "béta", ""], dtype=h5py.string_dtype("utf-8"))
        f.create_dataset("fixed", data=np.array([b"ab", b"abcd", b""], dtype="S4"))
        g = f.create_group("group/inner")
        g.attrs["fixed_array"] = np.array([b"x", b"yz"])
        g.attrs["vlen_array"] = ["one", "two", "three"]
        f.attrs["vlen_scalar"] = "hello"
        f.attrs["fixed_scalar"] = np.bytes_(b"fixed")
        f.attrs["int_scalar"] = np.int64(-42)
        f.attrs["double_scalar"] = 0.125
        f.attrs["int_array"] = np.array([1, 2], dtype=np.int32)
        d = f.create_dataset("group/kernel:0", data=np.arange(6, dtype=np.int32).reshape(2, 3))
        d.attrs["note"] = "dataset attribute"
        f.create_dataset("group/bytes", data=np.frombuffer(b"vocab\n", dtype=np.uint8))
        f.create_dataset("group/f64", data=np.array([[0.5, -1.25]], dtype=np.float64))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20240611)
    args = parser.parse_args()
    out = FIXTURE_DIR
    out.mkdir(parents=True, exist_ok=True)

    sd = make_state_dict(args.seed)
    with_buffer = dict(sd)
    with_buffer["bert.embeddings.position_ids"] = np.arange(POSITIONS, dtype=np.int64)[None, :]

    save_file(with_buffer, str(out / "model.safetensors"), metadata={"format": "pt"})
    f16 = {k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in with_buffer.items()}
    save_file(f16, str(out / "model_f16.safetensors"), metadata={"format": "pt"})
    write_bf16(out / "model_bf16.safetensors", with_buffer)

    with h5py.File(out / "flat.h5", "w") as f:
        for name, value in with_buffer.items():
            f.create_dataset(name, data=value)
    with h5py.File(out / "flat_f16.h5", "w") as f:
        for name, value in f16.items():
            f.create_dataset(name, data=value)
    with h5py.File(out / "nested.h5", "w") as f:
        for name, value in with_buffer.items():
            f.create_dataset(name.replace(".", "/"), data=value)

    write_keras_h5(out / "tf_model.h5", sd)
    _, listed_only, _ = tf_weight("bert.pooler.dense.bias", sd["bert.pooler.dense.bias"])
    write_keras_h5(out / "bad_tf_missing_weight.h5", sd, drop=listed_only, extra_listed=listed_only,
                   fixed_length=False)
    write_bad_inputs(out)
    write_strings_h5(out / "strings.h5")

    reference = {
        "seed": args.seed,
        "tensors": {canonical(k): {"shape": list(v.shape), "sum": float(v.astype(np.float64).sum()),
                                   "first": float(v.flat[0]), "last": float(v.flat[-1])}
                    for k, v in sd.items()},
        "query0_weight_row0": [float(x) for x in sd["bert.encoder.layer.0.attention.self.query.weight"][0]],
        "skipped": ["bert.embeddings.position_ids"],
    }
    (out / "reference.json").write_text(json.dumps(reference, indent=1, sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {len(list(out.iterdir()))} files, {total} bytes, to {out}")


if __name__ == "__main__":
    main()
