//! The jobs table's model: a query (status, text, sort) and a bounded window of keyset pages.
//!
//! The daemon pages forward only (`next_cursor`), so the cursor that fetched each page is kept
//! (a short string per page) and lets the window move back as well. At most [`MAX_PAGES`] pages
//! of [`PAGE`] jobs are held, so tens of thousands of jobs cost no more memory than a few hundred.

use std::collections::VecDeque;

use comfydash_wire::{Job, JobPage, JobStatus, JobUpdate};

use crate::action::Fetch;

/// Jobs per page.
pub const PAGE: usize = 100;
/// Pages held at once.
pub const MAX_PAGES: usize = 3;
/// Rows from the window's edge at which the next page is fetched.
const PREFETCH: usize = 20;

/// The daemon's sort values, in the order `o` cycles through them.
pub const SORTS: [&str; 6] = [
    "-created_at",
    "created_at",
    "-updated_at",
    "updated_at",
    "-priority",
    "priority",
];

/// One loaded page.
#[derive(Debug, Clone)]
struct Page {
    index: usize,
    jobs: Vec<Job>,
}

/// The jobs screen's query and window.
#[derive(Debug, Clone, Default)]
pub struct JobsView {
    /// Only this status, or all.
    pub filter: Option<JobStatus>,
    /// Text search (`q=`).
    pub search: String,
    /// Index into [`SORTS`].
    pub sort: usize,
    /// Bumped whenever the query changes, so late answers to an old query are dropped.
    pub generation: u64,
    /// Cursor that fetches page `i` (`None` for the first).
    cursors: Vec<Option<String>>,
    pages: VecDeque<Page>,
    /// Whether a page after the window exists.
    more_after: bool,
    /// Selected row, as an index into the window.
    pub selected: usize,
    /// Page being fetched.
    loading: Option<usize>,
    /// Jobs appeared that the window may be missing; refetch the first page when convenient.
    pub stale: bool,
    /// Whether anything was ever loaded for this query.
    pub loaded: bool,
}

impl JobsView {
    /// The daemon's sort value in use.
    pub fn sort_name(&self) -> &'static str {
        SORTS[self.sort % SORTS.len()]
    }

    /// Starts the query again from the first page.
    pub fn reset(&mut self) -> Fetch {
        self.generation += 1;
        self.cursors = vec![None];
        self.pages.clear();
        self.more_after = false;
        self.selected = 0;
        self.loading = None;
        self.stale = false;
        self.loaded = false;
        self.fetch(0)
    }

    /// Refetches the first page if the window is at the top; otherwise leaves it alone, since
    /// rows already shown are kept current by job events.
    pub fn refresh_top(&mut self) -> Option<Fetch> {
        if self.loading.is_some() || self.first_page() != 0 {
            return None;
        }
        self.stale = false;
        Some(self.fetch(0))
    }

    fn fetch(&mut self, page: usize) -> Fetch {
        self.loading = Some(page);
        let mut q = vec![
            format!("sort={}", self.sort_name()),
            format!("limit={PAGE}"),
        ];
        if let Some(s) = self.filter {
            q.push(format!("status={s}"));
        }
        if !self.search.is_empty() {
            q.push(format!("q={}", encode(&self.search)));
        }
        if let Some(Some(c)) = self.cursors.get(page) {
            q.push(format!("cursor={}", encode(c)));
        }
        Fetch::Jobs {
            generation: self.generation,
            page,
            query: q.join("&"),
        }
    }

    fn first_page(&self) -> usize {
        self.pages.front().map_or(0, |p| p.index)
    }

    /// Rows in the window.
    pub fn rows(&self) -> impl Iterator<Item = &Job> {
        self.pages.iter().flat_map(|p| p.jobs.iter())
    }

    /// Number of rows in the window.
    pub fn len(&self) -> usize {
        self.pages.iter().map(|p| p.jobs.len()).sum()
    }

    /// Position of the window's first row in the whole result (0-based).
    pub fn offset(&self) -> usize {
        self.first_page() * PAGE
    }

    /// Whether more rows exist after the window.
    pub fn more(&self) -> bool {
        self.more_after
    }

    /// Whether a page is being fetched.
    pub fn loading(&self) -> bool {
        self.loading.is_some()
    }

    /// The selected job.
    pub fn selected_job(&self) -> Option<&Job> {
        self.rows().nth(self.selected)
    }

    /// Takes a page the daemon sent; answers to an old query or an unexpected page are dropped.
    pub fn on_page(&mut self, generation: u64, page: usize, result: JobPage) {
        if generation != self.generation || self.loading != Some(page) {
            return;
        }
        self.loading = None;
        self.loaded = true;
        if self.cursors.len() <= page + 1 {
            self.cursors.resize(page + 2, None);
        }
        self.cursors[page + 1] = result.next_cursor.clone();
        let new = Page {
            index: page,
            jobs: result.jobs,
        };
        let keep_id = self.selected_job().map(|j| j.job_id.clone());
        match (
            self.pages.front().map(|p| p.index),
            self.pages.back().map(|p| p.index),
        ) {
            (Some(first), _) if page + 1 == first => {
                self.selected += new.jobs.len();
                self.pages.push_front(new);
                if self.pages.len() > MAX_PAGES {
                    self.pages.pop_back();
                    self.more_after = true;
                }
            }
            (_, Some(last)) if page == last + 1 => {
                self.more_after = result.next_cursor.is_some();
                self.pages.push_back(new);
                if self.pages.len() > MAX_PAGES
                    && let Some(dropped) = self.pages.pop_front()
                {
                    self.selected = self.selected.saturating_sub(dropped.jobs.len());
                }
            }
            _ => {
                // A fresh start or a refresh of the top: the window becomes this page alone.
                self.more_after = result.next_cursor.is_some();
                self.pages.clear();
                self.pages.push_back(new);
                self.cursors.truncate(page + 2);
                self.selected = keep_id
                    .and_then(|id| self.rows().position(|j| j.job_id == id))
                    .unwrap_or(self.selected);
            }
        }
        self.clamp();
    }

    /// The query failed: stop waiting for it.
    pub fn on_error(&mut self, generation: u64) {
        if generation == self.generation {
            self.loading = None;
        }
    }

    /// Moves the selection; returns a fetch when the window should grow in that direction.
    pub fn move_by(&mut self, delta: isize) -> Option<Fetch> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        self.selected = self.selected.saturating_add_signed(delta).min(len - 1);
        self.prefetch()
    }

    /// Moves to the first row of the whole result.
    pub fn top(&mut self) -> Option<Fetch> {
        if self.first_page() == 0 {
            self.selected = 0;
            None
        } else {
            Some(self.reset())
        }
    }

    /// Moves to the last loaded row and fetches the next page if there is one.
    pub fn bottom(&mut self) -> Option<Fetch> {
        self.selected = self.len().saturating_sub(1);
        self.prefetch()
    }

    fn prefetch(&mut self) -> Option<Fetch> {
        if self.loading.is_some() {
            return None;
        }
        let len = self.len();
        if self.more_after && self.selected + PREFETCH >= len {
            let next = self.pages.back().map_or(0, |p| p.index + 1);
            return Some(self.fetch(next));
        }
        let first = self.first_page();
        if first > 0 && self.selected < PREFETCH {
            return Some(self.fetch(first - 1));
        }
        None
    }

    fn clamp(&mut self) {
        self.selected = self.selected.min(self.len().saturating_sub(1));
    }

    /// Applies a live update to the row it names; returns false when the job is not shown.
    pub fn apply(&mut self, u: &JobUpdate) -> bool {
        let mut found = false;
        for job in self.pages.iter_mut().flat_map(|p| p.jobs.iter_mut()) {
            if job.job_id == u.job_id {
                apply_update(job, u);
                found = true;
            }
        }
        found
    }

    /// Replaces a row with a fresher copy of the job (from the detail view or an action).
    pub fn replace(&mut self, fresh: &Job) {
        for job in self.pages.iter_mut().flat_map(|p| p.jobs.iter_mut()) {
            if job.job_id == fresh.job_id {
                *job = fresh.clone();
            }
        }
    }

    /// Whether a new job would show at the top of this query (so the top page is worth refetching).
    pub fn shows_new_jobs(&self) -> bool {
        self.first_page() == 0 && self.search.is_empty() && self.sort_name().ends_with("_at")
    }
}

/// Applies a `job` event to a job as the daemon would have changed it.
pub fn apply_update(job: &mut Job, u: &JobUpdate) {
    if job.status != u.status {
        if u.status == JobStatus::Processing {
            job.started_at = Some(u.at);
            job.finished_at = None;
        }
        if u.status.is_terminal() {
            job.finished_at = Some(u.at);
        }
    }
    job.status = u.status;
    job.attempt = u.attempt;
    job.progress = u.progress.clone();
    if u.server.is_some() {
        job.server = u.server.clone();
    }
    job.error = u.error.clone();
    job.updated_at = u.at;
}

/// Percent-encodes a query value (only unreserved characters pass).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn page(from: usize, n: usize, next: Option<&str>) -> JobPage {
        JobPage {
            jobs: (from..from + n)
                .map(|i| fixtures::job(&format!("job-{i}"), JobStatus::Pending))
                .collect(),
            next_cursor: next.map(String::from),
        }
    }

    #[test]
    fn query_string_encodes_search_and_cursor() {
        let mut v = JobsView {
            filter: Some(JobStatus::Failed),
            search: "red bike/ü".into(),
            ..JobsView::default()
        };
        let Fetch::Jobs { query, .. } = v.reset() else {
            unreachable!()
        };
        assert_eq!(
            query,
            "sort=-created_at&limit=100&status=failed&q=red%20bike%2F%C3%BC"
        );
    }

    #[test]
    fn window_stays_bounded_while_paging_through_many_jobs() {
        let mut v = JobsView::default();
        let mut fetch = Some(v.reset());
        let mut pages_seen = 0;
        while let Some(Fetch::Jobs {
            generation, page, ..
        }) = fetch
        {
            let next = format!("c{}", page + 1);
            let more = page < 499; // 50,000 jobs
            v.on_page(
                generation,
                page,
                super::tests::page(page * PAGE, PAGE, more.then_some(next.as_str())),
            );
            pages_seen += 1;
            assert!(v.len() <= MAX_PAGES * PAGE);
            fetch = v.bottom();
        }
        assert_eq!(pages_seen, 500);
        assert_eq!(
            v.selected_job().unwrap().job_id.0,
            format!("job-{}", 500 * PAGE - 1)
        );
        // Walking back fetches earlier pages with the cursor that fetched them.
        v.selected = 0;
        let Some(Fetch::Jobs { page, query, .. }) = v.move_by(0) else {
            panic!("expected a fetch of the previous page")
        };
        assert_eq!(page, 496);
        assert!(query.ends_with("cursor=c496"), "{query}");
    }

    #[test]
    fn stale_answers_are_dropped() {
        let mut v = JobsView::default();
        let Fetch::Jobs { generation, .. } = v.reset() else {
            unreachable!()
        };
        let _ = v.reset();
        v.on_page(generation, 0, page(0, 5, None));
        assert_eq!(v.len(), 0);
    }
}
