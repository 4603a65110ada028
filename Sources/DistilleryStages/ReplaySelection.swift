// ReplaySelection: which cached examples a distillation run trains on — all of them, the
// first N (`--train-limit`), or, on an appended dataset, the newest version's rows plus a
// replayed share of the earlier ones (`--replay-fraction`).
//
// Continuing a student on new data alone makes it forget the old (catastrophic forgetting);
// rehearsing a random share of the old training rows alongside the new ones is the simplest
// remedy (experience replay, Robins 1995; Rolnick et al. 2019). The label cache records each
// example's training row, and an appended dataset's train file holds the earlier versions'
// rows first (DatasetManifest.rowsBeforeLastVersion), so a row is old exactly when its index
// is below that count. An old row is replayed when a SplitMix64 hash of (seed, row) falls
// below the fraction — augmented copies follow their row, and the choice does not depend on
// the cache's order. Left out on purpose: weighting the replayed rows, or regularisers such
// as EWC.
import DistilleryData
import Foundation
import WeightIO

/// Indices of the cache examples to train on, and a note for the plan ("" when all are used).
func trainingSelection(_ config: DistillConfig, cache: LabelCache, folder: PreparedFolder) throws -> ([Int], String) {
    guard let fraction = config.replayFraction else {
        return (Array(0..<min(cache.exampleCount, config.trainLimit ?? Int.max)), "")
    }
    guard let versions = folder.manifest.versions, versions.count > 1 else {
        throw StageError("\(config.data): --replay-fraction needs a dataset with versions (made by 'kd data prepare --append NEW.csv --base \(config.data)'); this one was prepared once — drop --replay-fraction to train on all of it")
    }
    let old = folder.manifest.rowsBeforeLastVersion(.train)
    let seed = config.seed ?? 13
    let selected = replaySelection(sourceRows: cache.sourceRows.map(Int.init), oldRows: old, fraction: fraction, seed: seed)
    let newCount = selected.filter { Int(cache.sourceRows[$0]) >= old }.count
    guard newCount > 0 else {
        throw StageError("\(config.labels): no cached example comes from version \(versions.last!.version) of \(config.data) (training rows \(old) and up) — label the appended dataset: kd label --data \(config.data)")
    }
    let note = "; replay: \(newCount) examples of version \(versions.last!.version) + \(selected.count - newCount) of \(cache.exampleCount - cache.sourceRows.filter { Int($0) >= old }.count) from earlier versions (fraction \(fraction))"
    return (selected, note)
}

/// The examples whose source row is new (≥ `oldRows`), plus those of old rows whose hash
/// under `seed` falls below `fraction`; in cache order.
func replaySelection(sourceRows: [Int], oldRows: Int, fraction: Double, seed: UInt64) -> [Int] {
    sourceRows.indices.filter { i in
        let row = sourceRows[i]
        if row >= oldRows { return true }
        var rng = SplitMix64(seed: seed ^ (UInt64(row) &* 0xD1B5_4A32_D192_ED03))
        return Double(rng.next() >> 11) * 0x1p-53 < fraction
    }
}
