// swift-tools-version:6.0
// Distillery: knowledge distillation and compression for BERT-family models on CPU.
import PackageDescription

let package = Package(
    name: "Distillery",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "kd", targets: ["kd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C shims over system libraries, found through pkg-config.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        // Kernels in C: packed GEMM, attention, GELU, LayerNorm and their backwards, AdamW;
        // portable `_ref` twins plus AVX2+FMA builds chosen at run time. The hot loops live
        // here, so no Swift target needs -Ounchecked: bounds and overflow checks stay on in
        // every build (benchmarks/results/2026-12-02-one-engine.md has the measurement).
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"])]),
        // Tensor core: shapes, storage, GEMM over BLAS, element-wise kernels.
        .target(name: "DistilleryTensor", dependencies: ["CBLAS", "CKernels"]),
        // The one BERT model: config, parameter block, the forward (inference and training)
        // with its backward, heads, the inference encoder.
        .target(name: "DistilleryModel", dependencies: ["DistilleryTensor", "CKernels", "DistilleryJSON"]),
        // HDF5 and safetensors readers/writers and the name tables between layouts.
        .target(name: "WeightIO", dependencies: ["DistilleryTensor", "CHDF5", "DistilleryJSON"]),
        // Exports other runtimes load: an HF / sentence-transformers directory, GGUF for
        // llama.cpp's BERT (and back), with per-layer shapes padded to uniform ones.
        .target(name: "Export", dependencies: ["DistilleryModel", "DistilleryTensor", "WeightIO", "DistilleryJSON"]),
        // BERT basic tokenizer + WordPiece, identical to HF BertTokenizer.
        .target(name: "Tokenization"),
        // Dataset import: CSV, text cleanup, dedup, stratified splits, manifests.
        .target(name: "DistilleryData", dependencies: ["DistilleryJSON"]),
        // The one JSON mechanism: Codable with one shared encoder configuration, and the
        // `JSONValue` tree for files read key by key and config surgery.
        .target(name: "DistilleryJSON"),
        // Trade-off reports: the measured variants as JSON, Markdown, CSV, SVG plots and one
        // HTML page; the Pareto front and `pick`. Numbers only, no model code.
        .target(name: "Reporting", dependencies: ["DistilleryJSON"]),
        // Drift monitoring statistics: PSI, Jensen–Shannon, MMD with a permutation test,
        // thresholds and the drift report (text, JSON, HTML). Pure: no model code.
        .target(name: "Monitoring", dependencies: ["DistilleryJSON", "Reporting"]),
        .executableTarget(name: "kd", dependencies: [
            "DistilleryStages", "Pipeline", "DistilleryJSON", "DistilleryData", "Distillation", "Compression", "Reporting",
            "Monitoring",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Training loop: AdamW, schedules, checkpoints, the trainer, metrics, the linear probe.
        .target(name: "DistilleryTraining", dependencies: ["DistilleryModel", "DistilleryTensor", "CKernels", "WeightIO", "DistilleryJSON"]),
        // Distillation: student specs (JSON), the checked plan, student initialisation, losses.
        .target(name: "Distillation", dependencies: ["DistilleryModel", "DistilleryTraining", "DistilleryTensor", "Compression", "DistilleryJSON"]),
        // Compression: the axis table, importance scores and structured slicing of a BERT weight set.
        .target(name: "Compression", dependencies: ["DistilleryModel", "DistilleryTensor"]),
        // Quantization: schemes and the tensors each quantizes, calibration, unit plans (the
        // stored formats and their kernels' packed matrices live in DistilleryTensor).
        .target(name: "Quantization", dependencies: ["DistilleryModel", "DistilleryTensor"]),
        // The stages as library calls (prepare, fine-tune, label, distill, eval, embed/predict,
        // bench): a configuration value in, a Codable report out, progress through a protocol.
        .target(name: "DistilleryStages", dependencies: [
            "DistilleryModel", "DistilleryTensor", "DistilleryTraining", "Distillation", "Compression", "DistilleryData", "WeightIO",
            "CKernels", "Tokenization", "DistilleryJSON", "Quantization", "Export", "Reporting", "Monitoring",
        ]),
        // Recipes run end to end (`kd run`): the recipe schema, the run folder with its
        // per-step keys and done-markers, the plan and its costs, the runner and sweeps.
        .target(name: "Pipeline", dependencies: [
            "DistilleryStages", "DistilleryJSON", "DistilleryData", "DistilleryModel", "Distillation", "Compression", "Quantization",
            "Export", "WeightIO", "Reporting",
        ]),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "TensorTests", dependencies: ["DistilleryTensor", "CKernels", "TestSupport"]),
        .testTarget(name: "ModelTests", dependencies: ["DistilleryModel", "WeightIO", "Tokenization", "TestSupport"]),
        .testTarget(name: "WeightIOTests", dependencies: ["WeightIO", "TestSupport"]),
        .testTarget(name: "TokenizationTests", dependencies: ["Tokenization", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["DistilleryTraining", "DistilleryModel", "DistilleryTensor", "WeightIO", "TestSupport"]),
        .testTarget(name: "DataTests", dependencies: ["DistilleryData", "kd", "TestSupport"]),
        .testTarget(name: "DistillationTests",
                    dependencies: ["Distillation", "DistilleryTraining", "DistilleryModel", "DistilleryTensor", "TestSupport"]),
        .testTarget(name: "CompressionTests", dependencies: ["Compression", "DistilleryModel", "DistilleryTensor", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["kd", "TestSupport", "WeightIO", "DistilleryTensor"]),
        .testTarget(name: "QuantizationTests",
                    dependencies: ["Quantization", "DistilleryModel", "DistilleryTensor", "WeightIO", "CKernels", "TestSupport"]),
        .testTarget(name: "ReportingTests", dependencies: ["Reporting", "TestSupport"]),
        .testTarget(name: "MonitoringTests", dependencies: ["Monitoring", "TestSupport"]),
        .testTarget(name: "ExportTests", dependencies: ["Export", "WeightIO", "DistilleryModel", "DistilleryTensor", "TestSupport"]),
    ]
)
