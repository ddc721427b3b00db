//! Arbitrary bytes through the `report` event-stream parser
//! (`record::read_record`). Checked:
//! - it never panics, whatever the bytes (torn lines, bad JSON, contract
//!   violations, huge numbers, deep nesting);
//! - a record it accepts is self-consistent: every sh row belongs to a job of
//!   the record, a job's sh calls are numbered 1, 2, … in order, every log path
//!   is the job's, and the record survives a JSON round trip unchanged.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use quire_core::ci::record::{RunRecord, read_record};

fuzz_target!(|data: &[u8]| {
    let Ok(record) = read_record(data) else {
        return;
    };
    let mut next_n: HashMap<&str, u32> = record.jobs.iter().map(|job| (job.job_id.as_str(), 1)).collect();
    assert_eq!(next_n.len(), record.jobs.len(), "duplicate job ids in the record");
    for sh in &record.sh {
        let n = next_n.get_mut(sh.job_id.as_str()).expect("sh row of an unknown job");
        assert_eq!(sh.n, *n, "sh calls of {} out of order", sh.job_id);
        *n += 1;
        assert_eq!(sh.log_path, format!("jobs/{}/sh-{}.log", sh.job_id, sh.n));
        assert!(sh.finished_ms.is_some() == sh.exit_code.is_some());
    }
    let json = serde_json::to_string(&record).expect("a record serializes");
    let back: RunRecord = serde_json::from_str(&json).expect("a record deserializes");
    assert_eq!(back, record, "JSON round trip changed the record");
});
