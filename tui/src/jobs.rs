//! The jobs table's model: a query (status, text, sort) and a bounded window of keyset pages.
//!
//! The daemon pages forward only (`next_cursor`), so the cursor that fetched each page is kept
//! (a short string per page) and lets the window move back as well. At most [`MAX_PAGES`] pages
//! of [`PAGE`] jobs are held, so tens of thousands of jobs cost no more memory than a few hundred.
//!
//! Pages are counted from an anchor: the top of the result, or (after `G`) its end. From the end,
//! the query runs in the reversed sort and each page is shown reversed, so the last row of the
//! whole result is one request away however many jobs there are.

use std::collections::VecDeque;

use comfydash_wire::client::encode;
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

/// One loaded page, its jobs in display order.
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
    /// Page indexes count from the end of the result instead of its top.
    from_end: bool,
    /// Cursor that fetches page `i` (`None` for the first).
    cursors: Vec<Option<String>>,
    /// In display order, top first.
    pages: VecDeque<Page>,
    /// Whether pages exist beyond the one farthest from the anchor.
    more_away: bool,
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
        self.restart(false)
    }

    fn restart(&mut self, from_end: bool) -> Fetch {
        self.generation += 1;
        self.from_end = from_end;
        self.cursors = vec![None];
        self.pages.clear();
        self.more_away = false;
        self.selected = 0;
        self.loading = None;
        self.stale = false;
        self.loaded = false;
        self.fetch(0)
    }

    /// Refetches the anchor's page (the top, or the end after `G`) if the window is there;
    /// otherwise leaves it alone, since rows already shown are kept current by job events.
    pub fn refresh_top(&mut self) -> Option<Fetch> {
        if self.loading.is_some() || self.anchor_page() != 0 {
            return None;
        }
        self.stale = false;
        Some(self.fetch(0))
    }

    fn fetch(&mut self, page: usize) -> Fetch {
        self.loading = Some(page);
        let sort = match (self.from_end, self.sort_name().strip_prefix('-')) {
            (false, _) => self.sort_name().to_string(),
            (true, Some(ascending)) => ascending.to_string(),
            (true, None) => format!("-{}", self.sort_name()),
        };
        let mut q = vec![format!("sort={sort}"), format!("limit={PAGE}")];
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

    /// Index of the loaded page nearest the anchor (0 when the anchor's own page is loaded).
    fn anchor_page(&self) -> usize {
        let edge = if self.from_end {
            self.pages.back()
        } else {
            self.pages.front()
        };
        edge.map_or(0, |p| p.index)
    }

    /// Whether rows exist above the window.
    fn more_above(&self) -> bool {
        if self.from_end {
            self.more_away
        } else {
            self.anchor_page() > 0
        }
    }

    /// Whether rows exist below the window.
    fn more_below(&self) -> bool {
        if self.from_end {
            self.anchor_page() > 0
        } else {
            self.more_away
        }
    }

    /// The page shown just above page `i`, if any can be.
    fn page_above(&self, i: usize) -> Option<usize> {
        if self.from_end {
            Some(i + 1)
        } else {
            i.checked_sub(1)
        }
    }

    /// The page shown just below page `i`, if any can be.
    fn page_below(&self, i: usize) -> Option<usize> {
        if self.from_end {
            i.checked_sub(1)
        } else {
            Some(i + 1)
        }
    }

    /// Rows in the window.
    pub fn rows(&self) -> impl Iterator<Item = &Job> {
        self.pages.iter().flat_map(|p| p.jobs.iter())
    }

    /// Number of rows in the window.
    pub fn len(&self) -> usize {
        self.pages.iter().map(|p| p.jobs.len()).sum()
    }

    /// Where the selection is, for the title: `row/last-loaded` from the top (`+` when more
    /// follow), or rows from the end after `G`.
    pub fn position(&self) -> String {
        if self.from_end {
            let below = self.anchor_page() * PAGE + self.len() - self.selected - 1;
            return match below {
                0 => "last".into(),
                n => format!("last−{n}"),
            };
        }
        let offset = self.anchor_page() * PAGE;
        let more = if self.more_below() { "+" } else { "" };
        format!(
            "{}/{}{more}",
            offset + self.selected + 1,
            offset + self.len()
        )
    }

    /// Whether more rows exist after the window.
    pub fn more(&self) -> bool {
        self.more_below()
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
        let first_load = !self.loaded;
        self.loaded = true;
        if self.cursors.len() <= page + 1 {
            self.cursors.resize(page + 2, None);
        }
        self.cursors[page + 1] = result.next_cursor.clone();
        let more = result.next_cursor.is_some();
        let mut jobs = result.jobs;
        if self.from_end {
            jobs.reverse();
        }
        let new = Page { index: page, jobs };
        let keep_id = self.selected_job().map(|j| j.job_id.clone());
        let top = self.pages.front().map(|p| p.index);
        let bottom = self.pages.back().map(|p| p.index);
        if top.and_then(|t| self.page_above(t)) == Some(page) {
            self.selected += new.jobs.len();
            self.pages.push_front(new);
            if self.from_end {
                self.more_away = more;
            }
            if self.pages.len() > MAX_PAGES {
                self.pages.pop_back();
                if !self.from_end {
                    self.more_away = true;
                }
            }
        } else if bottom.and_then(|b| self.page_below(b)) == Some(page) {
            if !self.from_end {
                self.more_away = more;
            }
            self.pages.push_back(new);
            if self.pages.len() > MAX_PAGES
                && let Some(dropped) = self.pages.pop_front()
            {
                self.selected = self.selected.saturating_sub(dropped.jobs.len());
                if self.from_end {
                    self.more_away = true;
                }
            }
        } else {
            // A fresh start or a refresh of the top: the window becomes this page alone.
            self.more_away = more;
            self.pages.clear();
            self.pages.push_back(new);
            self.cursors.truncate(page + 2);
            self.selected = if self.from_end && first_load {
                self.len().saturating_sub(1)
            } else {
                keep_id
                    .and_then(|id| self.rows().position(|j| j.job_id == id))
                    .unwrap_or(self.selected)
            };
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
        if self.more_above() {
            Some(self.restart(false))
        } else {
            self.selected = 0;
            None
        }
    }

    /// Moves to the last row of the whole result: at once when it is loaded, else by fetching
    /// the result's last page.
    pub fn bottom(&mut self) -> Option<Fetch> {
        if self.more_below() {
            Some(self.restart(true))
        } else {
            self.selected = self.len().saturating_sub(1);
            None
        }
    }

    fn prefetch(&mut self) -> Option<Fetch> {
        if self.loading.is_some() {
            return None;
        }
        let len = self.len();
        if self.more_below() && self.selected + PREFETCH >= len {
            let bottom = self.pages.back().map(|p| p.index);
            if let Some(next) = bottom.and_then(|b| self.page_below(b)) {
                return Some(self.fetch(next));
            }
        }
        if self.more_above() && self.selected < PREFETCH {
            let top = self.pages.front().map(|p| p.index);
            if let Some(next) = top.and_then(|t| self.page_above(t)) {
                return Some(self.fetch(next));
            }
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
        !self.from_end
            && self.anchor_page() == 0
            && self.search.is_empty()
            && self.sort_name().ends_with("_at")
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
            v.selected = v.len() - 1;
            fetch = v.move_by(0);
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

    /// Page `k` of a result of `total` jobs in the reversed sort (newest of the tail first).
    fn tail_page(total: usize, k: usize) -> JobPage {
        let hi = total - k * PAGE;
        let lo = hi.saturating_sub(PAGE);
        JobPage {
            jobs: (lo..hi)
                .rev()
                .map(|i| fixtures::job(&format!("job-{i}"), JobStatus::Pending))
                .collect(),
            next_cursor: (lo > 0).then(|| format!("t{}", k + 1)),
        }
    }

    fn expect_fetch(f: Option<Fetch>) -> (u64, usize, String) {
        match f {
            Some(Fetch::Jobs {
                generation,
                page,
                query,
            }) => (generation, page, query),
            other => panic!("expected a jobs fetch, got {other:?}"),
        }
    }

    #[test]
    fn end_key_reaches_the_true_end_and_the_window_walks_back_from_there() {
        let total = 50_000;
        let mut v = JobsView::default();
        let (generation, _, _) = expect_fetch(Some(v.reset()));
        v.on_page(generation, 0, page(0, PAGE, Some("c1")));
        assert_eq!(v.position(), "1/100+");

        // G: one request for the result's last page, in the reversed sort, shown reversed.
        let (generation, page_ix, query) = expect_fetch(v.bottom());
        assert_eq!((page_ix, query.as_str()), (0, "sort=created_at&limit=100"));
        assert_eq!(v.len(), 0, "the old window is dropped");
        v.on_page(generation, 0, tail_page(total, 0));
        assert_eq!(v.selected_job().unwrap().job_id.0, "job-49999");
        assert_eq!(v.rows().next().unwrap().job_id.0, "job-49900");
        assert_eq!(v.position(), "last");
        assert!(!v.more(), "nothing below the end");
        assert!(v.bottom().is_none(), "G again stays put");

        // Walking up fetches earlier pages with the reversed query's cursors.
        for k in 1..=5 {
            v.selected = 0;
            let (generation, page_ix, query) = expect_fetch(v.move_by(0));
            assert_eq!(page_ix, k);
            assert!(query.ends_with(&format!("cursor=t{k}")), "{query}");
            let keep = v.selected_job().unwrap().job_id.clone();
            v.on_page(generation, k, tail_page(total, k));
            assert_eq!(v.selected_job().unwrap().job_id, keep, "selection kept");
            assert!(v.len() <= MAX_PAGES * PAGE);
        }
        let first = v.rows().next().unwrap().job_id.0.clone();
        assert_eq!(first, format!("job-{}", total - 6 * PAGE));
        assert!(v.more(), "pages below were dropped");
        assert_eq!(
            v.position(),
            format!("last−{}", 5 * PAGE - 1),
            "the selected row is the top of page 4 from the end: job-49500"
        );
        assert_eq!(v.selected_job().unwrap().job_id.0, "job-49500");

        // Walking down again refetches the dropped pages nearer the end.
        v.selected = v.len() - 1;
        let (generation, page_ix, _) = expect_fetch(v.move_by(0));
        assert_eq!(page_ix, 2);
        v.on_page(generation, 2, tail_page(total, 2));
        assert_eq!(
            v.rows().last().unwrap().job_id.0,
            format!("job-{}", total - 2 * PAGE - 1)
        );

        // Back down to the end, then a refresh (reconnect, resync) reads the last page again.
        for k in [1, 0] {
            v.selected = v.len() - 1;
            let (generation, page_ix, _) = expect_fetch(v.move_by(0));
            assert_eq!(page_ix, k);
            v.on_page(generation, k, tail_page(total, k));
        }
        v.selected = v.len() - 1;
        assert!(v.move_by(0).is_none(), "nothing below the last page");
        assert!(!v.more());
        let (generation, page_ix, query) = expect_fetch(v.refresh_top());
        assert_eq!((page_ix, query.as_str()), (0, "sort=created_at&limit=100"));
        v.on_page(generation, 0, tail_page(total, 0));
        assert_eq!(v.selected_job().unwrap().job_id.0, "job-49999");

        // g goes back to the top with the normal sort.
        let (_, page_ix, query) = expect_fetch(v.top());
        assert_eq!((page_ix, query.as_str()), (0, "sort=-created_at&limit=100"));
    }

    #[test]
    fn end_key_on_a_short_result_just_moves() {
        let mut v = JobsView::default();
        let (generation, _, _) = expect_fetch(Some(v.reset()));
        v.on_page(generation, 0, page(0, 7, None));
        assert!(v.bottom().is_none());
        assert_eq!(v.selected, 6);
        assert!(v.top().is_none());
        assert_eq!(v.selected, 0);
        // Ascending sorts reverse to descending.
        v.sort = 1;
        let (generation, _, _) = expect_fetch(Some(v.reset()));
        v.on_page(generation, 0, page(0, PAGE, Some("c1")));
        let (_, _, query) = expect_fetch(v.bottom());
        assert!(query.starts_with("sort=-created_at&"), "{query}");
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
