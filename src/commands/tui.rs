//! `comfydash tui`: hands over to the console crate.

use crate::cli::TuiArgs;
use crate::exit::Exit;

/// Runs the console until the operator quits.
pub async fn run(args: TuiArgs) -> anyhow::Result<Exit> {
    comfydash_tui::run(comfydash_tui::Options {
        url: args.url,
        api_key: args.api_key,
        data_dir: args.data_dir,
        context: args.context,
    })
    .await?;
    Ok(Exit::Success)
}
