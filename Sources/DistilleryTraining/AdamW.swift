// AdamW, gradient clipping and learning-rate schedules, as PyTorch and HF define them.
//
// AdamW follows `torch.optim.AdamW` (single-tensor CPU path, amsgrad off, maximize off)
// operation by operation and in the same float32 order:
//   p ← p·(1 − lr·λ);  m ← m + (1−β1)(g − m);  v ← v·β2 + (1−β2)·g·g;
//   p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)
// with the bias corrections and step size computed in Double as Python does. Weight decay
// is skipped by name for biases (`*.bias`) and LayerNorm weights (`*LayerNorm.weight`),
// the parameter groups HF's Trainer builds. Clipping follows
// `torch.nn.utils.clip_grad_norm_` (coefficient max/(norm + 1e-6), clamped at 1, always
// applied). Schedules follow HF `get_linear_schedule_with_warmup` and
// `get_cosine_schedule_with_warmup` under `LambdaLR`: step 0 runs at rate 0 when there is
// a warm-up. The update is element-wise, in the C kernel `dk_adamw` (each element rounded
// exactly as the formula is written, no fused multiply-adds), run row-parallel (`Compute.parallelRanges`);
// the gradient norm sums fixed blocks of `normBlock` elements in parallel and adds the
// block sums in order, so it does not depend on the thread count.
// Left out on purpose: amsgrad, per-group learning rates, foreach/fused paths.
import CKernels
import DistilleryModel
import DistilleryTensor
import Foundation

/// Hyper-parameters of AdamW.
public struct AdamWSettings: Sendable, Equatable {
    public var beta1: Double
    public var beta2: Double
    /// Added after the square root of the bias-corrected second moment.
    public var epsilon: Double
    /// Decoupled weight decay λ (applied as p·(1 − lr·λ) to decayed tensors).
    public var weightDecay: Double

    public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0.01) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }
}

/// AdamW state: the two moments (laid out like the parameters) and the step count.
public struct AdamW: Sendable, Equatable {
    public var settings: AdamWSettings
    /// First moment m, one element per parameter.
    public var firstMoment: ParameterBlock
    /// Second moment v, one element per parameter.
    public var secondMoment: ParameterBlock
    /// Number of updates done so far (t of the bias corrections is `step` after an update).
    public var step: Int
    /// Whether each tensor of the layout gets weight decay (by name; see `decays(_:)`).
    public let decayByTensor: [Bool]

    /// Fresh state (zero moments, step 0) for parameters with `layout`.
    public init(layout: ParameterLayout, settings: AdamWSettings = AdamWSettings()) {
        self.settings = settings
        firstMoment = ParameterBlock(zeros: layout)
        secondMoment = ParameterBlock(zeros: layout)
        step = 0
        decayByTensor = layout.entries.map { Self.decays($0.name) }
    }

    /// True when tensor `name` gets weight decay: everything except biases and LayerNorm weights.
    public static func decays(_ name: String) -> Bool {
        !(name.hasSuffix(".bias") || name.hasSuffix("LayerNorm.weight"))
    }

    /// One AdamW update of `parameters` with `gradients` at learning rate `learningRate`.
    public mutating func update(_ parameters: inout ParameterBlock, gradients: Gradients, learningRate lr: Double) {
        let layout = parameters.layout
        precondition(gradients.layout == layout && firstMoment.layout == layout,
                     "AdamW.update: parameters, gradients and optimizer state have different layouts")
        step += 1
        let s = settings
        let t = Double(step)
        let biasCorrection1 = 1 - Foundation.pow(s.beta1, t)
        let biasCorrection2 = 1 - Foundation.pow(s.beta2, t)
        let negativeStepSize = Float(-(lr / biasCorrection1))
        let correction2Root = Float(biasCorrection2.squareRoot())
        let decayFactor = Float(1 - lr * s.weightDecay)
        let oneMinusBeta1 = Float(1 - s.beta1), beta2 = Float(s.beta2), oneMinusBeta2 = Float(1 - s.beta2)
        let eps = Float(s.epsilon)
        let decayByTensor = self.decayByTensor
        parameters.storage.withUnsafeMutableBufferPointer { pp in
        firstMoment.storage.withUnsafeMutableBufferPointer { mp in
        secondMoment.storage.withUnsafeMutableBufferPointer { vp in
        gradients.storage.withUnsafeBufferPointer { gp in
            let (p, m, v, g) = (pp.baseAddress!, mp.baseAddress!, vp.baseAddress!, gp.baseAddress!)
            for (e, decays) in zip(layout.entries, decayByTensor) {
                let decay = decays && s.weightDecay != 0
                let base = e.offset
                Compute.parallelRanges(e.count, granularity: 4096) { r in
                    let i = base + r.lowerBound
                    dk_adamw(p + i, m + i, v + i, g + i, r.count, decay ? 1 : 0, decayFactor, oneMinusBeta1, beta2,
                             oneMinusBeta2, correction2Root, eps, negativeStepSize)
                }
            }
        } } } }
    }
}

/// Elements per partial sum of `gradientNorm` (fixed, so the sum does not depend on threads).
private let normBlock = 1 << 16

/// The global L2 norm of all gradients (computed in Double, returned as Float).
public func gradientNorm(_ gradients: Gradients) -> Float {
    gradients.storage.withUnsafeBufferPointer { buffer in
        let g = buffer.baseAddress!, n = buffer.count
        let blocks = (n + normBlock - 1) / normBlock
        var partial = [Double](repeating: 0, count: blocks)
        partial.withUnsafeMutableBufferPointer { out in
            let o = out.baseAddress!
            Compute.parallelRanges(blocks) { r in
                for b in r {
                    var sum = 0.0
                    for i in (b * normBlock)..<min(n, (b + 1) * normBlock) { sum += Double(g[i]) * Double(g[i]) }
                    o[b] = sum
                }
            }
        }
        return Float(partial.reduce(0, +).squareRoot())
    }
}

/// Scales all gradients so their global L2 norm is at most `maxNorm`, as
/// `torch.nn.utils.clip_grad_norm_`; returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ gradients: inout Gradients, maxNorm: Float) -> Float {
    let norm = gradientNorm(gradients)
    let coefficient = min(maxNorm / (norm + 1e-6), 1)
    if coefficient < 1 {
        gradients.storage.withUnsafeMutableBufferPointer { buffer in
            let g = buffer.baseAddress!
            Compute.parallelRanges(buffer.count, granularity: 4096) { r in dk_scale(g + r.lowerBound, r.count, coefficient) }
        }
    }
    return norm
}

/// Linear warm-up from 0, then linear or cosine decay to 0 (HF's schedules).
public struct LearningRateSchedule: Sendable, Equatable {
    /// The decay after warm-up.
    public enum Decay: String, Sendable, CaseIterable {
        /// HF `get_linear_schedule_with_warmup`.
        case linear
        /// HF `get_cosine_schedule_with_warmup` with half a cycle (to 0 at the end).
        case cosine
    }

    public var peakRate: Double
    public var warmupSteps: Int
    public var totalSteps: Int
    public var decay: Decay

    public init(peakRate: Double, warmupSteps: Int, totalSteps: Int, decay: Decay = .linear) {
        self.peakRate = peakRate
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.decay = decay
    }

    /// The multiplier of the peak rate at optimizer step `step` (0-based), as HF's lambda.
    public func multiplier(at step: Int) -> Double {
        if step < warmupSteps { return Double(step) / Double(max(1, warmupSteps)) }
        switch decay {
        case .linear:
            return max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmupSteps)))
        case .cosine:
            let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
            return max(0, 0.5 * (1 + Foundation.cos(Double.pi * 0.5 * 2 * progress)))
        }
    }

    /// The learning rate of optimizer step `step` (0-based): peak · multiplier, as LambdaLR.
    public func rate(at step: Int) -> Double { peakRate * multiplier(at: step) }
}
