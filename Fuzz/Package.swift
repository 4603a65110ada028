// swift-tools-version:6.0
// Distillery's fuzzers: one libFuzzer executable per reader, built over the library
// sources of the main package (Library is a symlink to ../Sources; the library targets
// below mirror ../Package.swift's, so a new library target is added in both) with
// `swift build --sanitize fuzzer --sanitize address` — see Fuzz/README.md and `make fuzz`.
// A separate package because a fuzz target has no main() of its own (libFuzzer's is
// linked in), so it cannot live among the main package's ordinary executables.
import PackageDescription

let library: [Target] = [
    .systemLibrary(name: "CBLAS", path: "Library/CBLAS", pkgConfig: "openblas"),
    .systemLibrary(name: "CHDF5", path: "Library/CHDF5", pkgConfig: "hdf5"),
    .target(name: "CKernels", path: "Library/CKernels", cSettings: [.unsafeFlags(["-O3"])]),
    .target(name: "DistilleryJSON", path: "Library/DistilleryJSON"),
    .target(name: "Reporting", dependencies: ["DistilleryJSON"], path: "Library/Reporting"),
    .target(name: "Monitoring", dependencies: ["DistilleryJSON", "Reporting"], path: "Library/Monitoring"),
    .target(name: "DistilleryTensor", dependencies: ["CBLAS", "CKernels"], path: "Library/DistilleryTensor"),
    .target(name: "DistilleryModel", dependencies: ["DistilleryTensor", "CKernels", "DistilleryJSON"], path: "Library/DistilleryModel"),
    .target(name: "WeightIO", dependencies: ["DistilleryTensor", "CHDF5", "DistilleryJSON"], path: "Library/WeightIO"),
    .target(name: "Export", dependencies: ["DistilleryModel", "DistilleryTensor", "WeightIO", "DistilleryJSON"], path: "Library/Export"),
    .target(name: "Tokenization", path: "Library/Tokenization"),
    .target(name: "DistilleryData", dependencies: ["DistilleryJSON"], path: "Library/DistilleryData"),
    .target(name: "DistilleryTraining", dependencies: ["DistilleryModel", "DistilleryTensor", "CKernels", "WeightIO", "DistilleryJSON"],
            path: "Library/DistilleryTraining"),
    .target(name: "Compression", dependencies: ["DistilleryModel", "DistilleryTensor"], path: "Library/Compression"),
    .target(name: "Quantization", dependencies: ["DistilleryModel", "DistilleryTensor"], path: "Library/Quantization"),
    .target(name: "Distillation", dependencies: ["DistilleryModel", "DistilleryTraining", "DistilleryTensor", "Compression", "DistilleryJSON"],
            path: "Library/Distillation"),
    .target(name: "DistilleryStages", dependencies: ["DistilleryModel", "DistilleryTensor", "DistilleryTraining", "Distillation",
                                                     "Compression", "DistilleryData", "WeightIO", "CKernels", "Tokenization",
                                                     "DistilleryJSON", "Quantization", "Export", "Reporting", "Monitoring"],
            path: "Library/DistilleryStages"),
    .target(name: "Pipeline", dependencies: ["DistilleryStages", "DistilleryJSON", "DistilleryData", "DistilleryModel", "Distillation",
                                             "Compression", "Quantization", "Export", "WeightIO", "Reporting"],
            path: "Library/Pipeline"),
    .target(name: "FuzzSupport", path: "Harnesses/FuzzSupport"),
]

/// Fuzz target name → the library targets its harness reads through.
let harnesses: [(String, [Target.Dependency])] = [
    ("fuzz-safetensors", ["WeightIO"]),
    ("fuzz-gguf", ["WeightIO"]),
    ("fuzz-config", ["DistilleryModel"]),
    ("fuzz-vocab", ["Tokenization"]),
    ("fuzz-student", ["Distillation", "DistilleryModel"]),
    ("fuzz-csv", ["DistilleryData"]),
    ("fuzz-dataset", ["DistilleryStages", "DistilleryData"]),
    ("fuzz-hdf5", ["WeightIO", "DistilleryTraining", "DistilleryModel", "DistilleryTensor"]),
    ("fuzz-recipe", ["Pipeline"]),
    ("fuzz-report", ["Reporting"]),
    ("fuzz-quantized", ["WeightIO", "DistilleryModel", "DistilleryTensor"]),
]

let package = Package(
    name: "DistilleryFuzz",
    platforms: [.macOS(.v14)],
    targets: library + harnesses.map { name, dependencies in
        .executableTarget(name: name, dependencies: dependencies + ["FuzzSupport"], path: "Harnesses/\(name)")
    }
)
