pub(crate) async fn run() {}
