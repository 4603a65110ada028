// Metrics: accuracy, per-class precision/recall/F1, macro-F1 and the confusion matrix of a
// single-label classifier.
//
// Follows scikit-learn's `classification_report` conventions: a class with no predictions
// has precision 0, a class with no examples has recall 0 (sklearn's zero_division=0), and
// macro-F1 averages F1 over the classes that occur in the true or the predicted labels
// (sklearn's default `labels=unique(y_true ∪ y_pred)`).
// Left out on purpose: micro/weighted averages (micro equals accuracy here).
import Foundation

/// Precision, recall and F1 of one class.
public struct ClassMetrics: Sendable, Equatable {
    public var precision: Double
    public var recall: Double
    public var f1: Double
    /// Examples whose true label is this class.
    public var support: Int
}

/// Classification metrics from a confusion matrix (rows = true class, columns = predicted).
public struct ClassificationMetrics: Sendable, Equatable {
    /// `confusion[t][p]`: examples of true class t predicted as p.
    public let confusion: [[Int]]
    public let perClass: [ClassMetrics]
    public let accuracy: Double
    public let macroF1: Double
    public var total: Int { confusion.reduce(0) { $0 + $1.reduce(0, +) } }

    /// Metrics of a square confusion matrix.
    public init(confusion: [[Int]]) {
        let k = confusion.count
        precondition(confusion.allSatisfy { $0.count == k }, "ClassificationMetrics: confusion matrix is not square")
        self.confusion = confusion
        var perClass: [ClassMetrics] = []
        var correct = 0, total = 0, f1Sum = 0.0, present = 0
        for c in 0..<k {
            let tp = confusion[c][c]
            let support = confusion[c].reduce(0, +)
            let predicted = (0..<k).reduce(0) { $0 + confusion[$1][c] }
            let precision = predicted > 0 ? Double(tp) / Double(predicted) : 0
            let recall = support > 0 ? Double(tp) / Double(support) : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            perClass.append(ClassMetrics(precision: precision, recall: recall, f1: f1, support: support))
            correct += tp
            total += support
            if support > 0 || predicted > 0 { f1Sum += f1; present += 1 }
        }
        self.perClass = perClass
        accuracy = total > 0 ? Double(correct) / Double(total) : 0
        macroF1 = present > 0 ? f1Sum / Double(present) : 0
    }

    /// Several tasks' metrics as one score (multi-task model selection): their confusion
    /// matrices block-diagonal (one task's classes are never confused with another's), their
    /// per-class scores in task order, accuracy pooled over all examples, and macro-F1 the
    /// mean of the tasks' macro-F1s — each task counts once, whatever its class count.
    public init(tasks: [ClassificationMetrics]) {
        let k = tasks.reduce(0) { $0 + $1.confusion.count }
        var m = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        var offset = 0
        for t in tasks {
            for (i, row) in t.confusion.enumerated() { for (j, v) in row.enumerated() { m[offset + i][offset + j] = v } }
            offset += t.confusion.count
        }
        confusion = m
        perClass = tasks.flatMap(\.perClass)
        let total = tasks.reduce(0) { $0 + $1.total }
        accuracy = total > 0 ? tasks.reduce(0.0) { $0 + $1.accuracy * Double($1.total) } / Double(total) : 0
        macroF1 = tasks.isEmpty ? 0 : tasks.reduce(0.0) { $0 + $1.macroF1 } / Double(tasks.count)
    }

    /// Metrics of predictions against true labels, classes `0..<classCount`.
    public init(truth: [Int], predicted: [Int], classCount: Int) {
        precondition(truth.count == predicted.count, "ClassificationMetrics: \(truth.count) labels vs \(predicted.count) predictions")
        var m = [[Int]](repeating: [Int](repeating: 0, count: classCount), count: classCount)
        for (t, p) in zip(truth, predicted) { m[t][p] += 1 }
        self.init(confusion: m)
    }
}

/// How closely a student follows its teacher on the same inputs: top-1 agreement and the
/// mean KL(teacher ‖ student) of the softmax distributions at temperature 1, in nats.
/// KL is evaluated per example in Double from max-shifted log-softmaxes, so logits of any
/// magnitude are safe; a class the teacher gives probability 0 contributes nothing.
public struct FidelityMetrics: Sendable, Equatable {
    /// Fraction of examples whose arg-max class is the same for teacher and student.
    public let agreement: Double
    /// Mean over examples of Σ_j p_t(j) · (log p_t(j) − log p_s(j)).
    public let meanKL: Double
    public let total: Int

    /// Fidelity of `student` logits to `teacher` logits, one row per example (same class count).
    public init(teacher: [[Float]], student: [[Float]]) {
        precondition(teacher.count == student.count, "FidelityMetrics: \(teacher.count) teacher rows vs \(student.count) student rows")
        var agree = 0, klSum = 0.0
        for (t, s) in zip(teacher, student) {
            precondition(t.count == s.count && !t.isEmpty, "FidelityMetrics: teacher and student have different class counts")
            var bt = 0, bs = 0
            for c in t.indices.dropFirst() {
                if t[c] > t[bt] { bt = c }
                if s[c] > s[bs] { bs = c }
            }
            if bt == bs { agree += 1 }
            let lt = Self.logSoftmax(t), ls = Self.logSoftmax(s)
            var kl = 0.0
            for c in t.indices where lt[c] > -.infinity { kl += Foundation.exp(lt[c]) * (lt[c] - ls[c]) }
            klSum += max(kl, 0)
        }
        total = teacher.count
        agreement = total > 0 ? Double(agree) / Double(total) : 0
        meanKL = total > 0 ? klSum / Double(total) : 0
    }

    static func logSoftmax(_ z: [Float]) -> [Double] {
        let m = Double(z.max()!)
        let lse = m + Foundation.log(z.reduce(0.0) { $0 + Foundation.exp(Double($1) - m) })
        return z.map { Double($0) - lse }
    }
}
