//! The journal: the most recent requests an API answered, newest last, with the verdict on
//! each (`ok`, or why it was refused), for `GET /__sandbox/journal`.

use std::collections::VecDeque;

use parking_lot::Mutex;

/// Requests kept in the journal.
const JOURNAL_LEN: usize = 1000;

/// One line of `GET /__sandbox/journal`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JournalEntry {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub tenant: String,
    pub operation: Option<String>,
    /// `ok`, or why the request was refused.
    pub verdict: String,
}

/// A bounded log of requests.
#[derive(Debug, Default)]
pub struct Journal {
    entries: Mutex<VecDeque<JournalEntry>>,
}

impl Journal {
    /// Appends an entry, dropping the oldest beyond the journal's length.
    pub fn record(&self, entry: JournalEntry) {
        let mut j = self.entries.lock();
        if j.len() >= JOURNAL_LEN {
            j.pop_front();
        }
        j.push_back(entry);
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.entries.lock().iter().cloned().collect()
    }
}
