;; Fan-out / fan-in: one job lists the work, shards process it in parallel,
;; a final job gathers every shard's output.
(local ci (require :quire.ci))
(local {: split} (require :lib.shards))

(local shard-count 3)
(local files [:a.txt :b.txt :c.txt :d.txt :e.txt :f.txt :g.txt])
(local shards (split files shard-count))

(ci.job :plan [:quire/push]
  (fn [runtime]
    (runtime.sh ["echo" (.. (length files) " files in " shard-count " shards")])
    {: shards}))

(for [i 1 shard-count]
  (ci.job (.. :shard- i) [:plan]
    (fn [runtime]
      (let [{: shards} (runtime.jobs :plan)
            mine (. shards i)
            words (icollect [_ file (ipairs mine)]
                    (.. file ":" (length file)))]
        (runtime.sh ["echo" (.. "shard " i) (table.concat words " ")])
        {:count (length mine) :first (. mine 1)}))))

(ci.job :gather (fcollect [i 1 shard-count] (.. :shard- i))
  (fn [runtime]
    (let [total (faccumulate [sum 0 i 1 shard-count]
                  (+ sum (. (runtime.jobs (.. :shard- i)) :count)))]
      (assert (= total (length files)) "every file was processed once")
      (runtime.sh ["echo" (.. "gathered " total " results")])
      {: total})))
