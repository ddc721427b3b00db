;; A small pipeline: build, then test on several versions, then a summary
;; that reads the outputs of the jobs before it.
(local ci (require :quire.ci))

(ci.job :build [:quire/push]
  (fn [runtime]
    (let [push (runtime.jobs :quire/push)]
      (runtime.sh (.. "echo building " push.sha))
      {:artifact "hello.bin"})))

(local versions [:1.78 :1.80])

(each [_ version (ipairs versions)]
  (ci.job (.. :test- version) [:build]
    (fn [runtime]
      (let [{: artifact} (runtime.jobs :build)]
        (runtime.sh ["echo" "testing" artifact "on" version])
        {: version}))))

;; It runs no command and returns nil, so its outcome is `skipped` (the
;; summary says "1 skipped"): the outcome of a job that had nothing to do.
;; Return a table instead to make it `complete`, with that table as output.
(ci.job :report (icollect [_ v (ipairs versions)] (.. :test- v))
  (fn [runtime]
    (each [_ v (ipairs versions)]
      (let [out (runtime.jobs (.. :test- v))]
        (print (.. "tested on " out.version))))
    nil))
