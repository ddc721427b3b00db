;; A Rust project: check formatting, build, test, and report the crate's
;; version to the jobs after it. Build output goes to the run's log directory
;; when QUIRE_TARGET_DIR is set, so the workspace stays clean.
(local ci (require :quire.ci))

(ci.image "rust:1.85")

(fn cargo [runtime args]
  (let [argv ["cargo"]
        target (runtime.env :QUIRE_TARGET_DIR)]
    (each [_ a (ipairs args)] (table.insert argv a))
    (runtime.sh argv {:env (if target {:CARGO_TARGET_DIR target} {})})))

(ci.job :metadata [:quire/push]
  (fn [runtime]
    (let [manifest (runtime.sh "cat Cargo.toml")
          version (string.match manifest.stdout "version%s*=%s*\"([^\"]+)\"")]
      {: version})))

(ci.job :fmt [:quire/push]
  (fn [runtime]
    (cargo runtime ["fmt" "--check"])))

(ci.job :build [:metadata]
  (fn [runtime]
    (cargo runtime ["build" "--offline"])
    {:version (. (runtime.jobs :metadata) :version)}))

(ci.job :test [:build :fmt]
  (fn [runtime]
    (let [result (cargo runtime ["test" "--offline" "--quiet"])]
      (print (.. "tested greeter " (. (runtime.jobs :build) :version)))
      {:passed (not= nil (string.find result.stdout "test result: ok"))})))
