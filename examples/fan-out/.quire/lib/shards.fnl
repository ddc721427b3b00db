;; Split a list into n shards, round robin.
(fn split [items n]
  (let [shards (fcollect [_ 1 n] [])]
    (each [i item (ipairs items)]
      (table.insert (. shards (+ 1 (% (- i 1) n))) item))
    shards))

{: split}
