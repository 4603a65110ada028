// HTMLPage: the report as one self-contained page — machine block, recipe hash, the
// trade-off table and both plots inline (SVG and CSS in the file; no script, no font, no
// external URL) — and `writeTradeoffReport`, which writes that page beside report.md,
// report.json, report.csv and the two SVG files.
//
// Every file is rendered before any is written; each is written to a hidden partial sibling
// and renamed over its name only when all six are on disk, so an interrupted write leaves
// either the old set or the new one (per file), never a truncated file. Left out on purpose:
// per-class scores and confusion matrices (`kd eval` prints them for one model).
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The page's style sheet.
let pageCSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 24px; color: #222; max-width: 1500px; }
h1 { font-size: 22px; margin: 0 0 4px 0; } h2 { font-size: 17px; margin: 24px 0 8px 0; }
.meta { color: #555; font-size: 13px; margin: 0 0 12px 0; }
dl.machine { display: grid; grid-template-columns: max-content auto; gap: 2px 14px; font-size: 13px; margin: 0; }
dl.machine dt { color: #666; } dl.machine dd { margin: 0; font-family: "DejaVu Sans Mono", monospace; }
table.tradeoff { border-collapse: collapse; font-size: 12.5px; }
table.tradeoff th, table.tradeoff td { border-bottom: 1px solid #ddd; padding: 4px 7px; white-space: nowrap; }
table.tradeoff th { background: #f3f3f3; text-align: left; vertical-align: bottom; white-space: normal; }
table.tradeoff td.n { text-align: right; font-variant-numeric: tabular-nums; }
table.tradeoff tr.teacher td { background: #fff8e1; font-weight: 600; }
table.tradeoff tr.front td:first-child::after { content: " ◆"; color: #d9480f; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; }
.plots svg { border: 1px solid #ddd; }
p.legend { font-size: 12px; color: #555; max-width: 1100px; }
"""

/// The report as one HTML page (UTF-8, no external resources).
public func htmlPage(_ r: TradeoffReport) -> String {
    let columns = tableColumns(r)
    let onFront = Set(paretoFront(r))
    var h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    h += "<title>Trade-off report: \(xmlEscape(r.dataset))</title>\n<style>\n\(pageCSS)\n</style>\n</head>\n<body>\n"
    h += "<h1>Trade-off report: \(xmlEscape(r.dataset)) (\(xmlEscape(r.split)))</h1>\n"
    var meta = ["created \(r.created)", "\(r.variants.count) variant(s)", "\(r.variants.first?.examples ?? 0) examples"]
    if let t = r.teacher { meta.append("teacher: \(t)") }
    h += "<p class=\"meta\">\(xmlEscape(meta.joined(separator: " · ")))</p>\n"
    h += "<h2>Machine and run</h2>\n<dl class=\"machine\">\n"
    let m = r.machine
    let facts: [(String, String)] = [
        ("CPU", m.cpuModel), ("cores", "\(m.cores)"), ("threads", "\(m.threads)"), ("kernels", m.kernelPath), ("kd", m.kdVersion),
        ("OS", m.os), ("recipe hash", r.recipeHash ?? "— (not run from a recipe)"), ("run", r.runID ?? "—"),
        ("sequence length", "\(r.sequenceLength) tokens"),
    ]
    for (k, v) in facts { h += "<dt>\(xmlEscape(k))</dt><dd>\(xmlEscape(v))</dd>\n" }
    h += "</dl>\n<h2>Variants</h2>\n<table class=\"tradeoff\">\n<thead><tr>"
    h += columns.map { "<th>\(xmlEscape($0.header))</th>" }.joined() + "</tr></thead>\n<tbody>\n"
    for v in r.tableOrder {
        let classes = [v.spec.name == r.teacher ? "teacher" : nil, onFront.contains(v.spec.name) ? "front" : nil].compactMap { $0 }
        h += "<tr\(classes.isEmpty ? "" : " class=\"\(classes.joined(separator: " "))\"")"
            + "\(v.spec.note.map { " title=\"\(xmlEscape($0))\"" } ?? "")>"
        for (i, c) in columns.enumerated() {
            h += "<td\(rightAlignedColumns.contains(i) ? " class=\"n\"" : "")>\(xmlEscape(c.cell(r, v)))</td>"
        }
        h += "</tr>\n"
    }
    h += "</tbody>\n</table>\n<p class=\"legend\">\(xmlEscape(tableLegend(r)))</p>\n"
    h += "<h2>Plots</h2>\n<div class=\"plots\">\n\(latencyPlotSVG(r, inline: true))\(sizePlotSVG(r, inline: true))</div>\n"
    h += "</body>\n</html>\n"
    return h
}

/// The report as Markdown: a heading, the machine, the table.
public func markdownReport(_ r: TradeoffReport) -> String {
    let m = r.machine
    var lines = ["# Trade-off report: \(r.dataset) (\(r.split))", "",
                 "- created: \(r.created)",
                 "- machine: \(m.cpuModel), \(m.cores) cores, \(m.threads) thread(s), kernels: \(m.kernelPath)",
                 "- \(m.kdVersion); \(m.os)",
                 "- recipe hash: \(r.recipeHash ?? "— (not run from a recipe)")" + (r.runID.map { ", run \($0)" } ?? ""),
                 "", markdownTable(r), "",
                 "![macro-F1 vs batch-1 latency](f1-vs-latency.svg)", "", "![macro-F1 vs file size](f1-vs-size.svg)", ""]
    if r.teacher == nil { lines.insert("- no teacher: agreement, KL, % of teacher F1 and speed-up are left out", at: 6) }
    return lines.joined(separator: "\n")
}

/// The names of the files `writeTradeoffReport` writes, in order.
public let tradeoffReportFiles = ["report.md", "report.json", "report.csv", "f1-vs-latency.svg", "f1-vs-size.svg", "report.html"]

/// Writes report.md, report.json, report.csv, f1-vs-latency.svg, f1-vs-size.svg and
/// report.html into `directory` (created when missing, its parent must exist); returns
/// their paths.
public func writeTradeoffReport(_ r: TradeoffReport, directory: String) throws -> [String] {
    let contents: [Data] = [Data(markdownReport(r).utf8), try tradeoffReportJSON(r), Data(csvTable(r).utf8),
                            Data(latencyPlotSVG(r).utf8), Data(sizePlotSVG(r).utf8), Data(htmlPage(r).utf8)]
    let fm = FileManager.default
    var isDirectory: ObjCBool = false
    if fm.fileExists(atPath: directory, isDirectory: &isDirectory) {
        guard isDirectory.boolValue else { throw ReportError("\(directory): is a file — --out takes a directory for the report files") }
    } else {
        let parent = URL(fileURLWithPath: directory).deletingLastPathComponent().path
        guard fm.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ReportError("\(directory): its parent directory \(parent) does not exist — create it first")
        }
        do { try fm.createDirectory(atPath: directory, withIntermediateDirectories: false) } catch {
            throw ReportError("\(directory): cannot create the directory (\(error.localizedDescription))")
        }
    }
    let paths = tradeoffReportFiles.map { URL(fileURLWithPath: directory).appendingPathComponent($0).path }
    let partials = tradeoffReportFiles.map { URL(fileURLWithPath: directory).appendingPathComponent(".\($0).partial-\(getpid())").path }
    do {
        for (data, partial) in zip(contents, partials) {
            guard fm.createFile(atPath: partial, contents: nil) else { throw ReportError("\(partial): cannot create") }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: partial))
            defer { try? handle.close() }
            try handle.write(contentsOf: data)
            try handle.synchronize()
        }
        for (partial, path) in zip(partials, paths) where rename(partial, path) != 0 {
            throw ReportError("\(path): cannot rename the finished file into place (\(String(cString: strerror(errno))))")
        }
    } catch {
        for partial in partials { try? fm.removeItem(atPath: partial) }
        throw error as? ReportError ?? ReportError("\(directory): cannot write the report (\(error.localizedDescription))")
    }
    return paths
}
