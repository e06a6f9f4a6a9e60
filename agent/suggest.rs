//! "Did you mean": the known word a misspelt one was probably meant to be.

/// The word of `known` nearest to `word` (ignoring case) when it is near enough to be a
/// misspelling of it: two edits, or a quarter of its length for long words.
pub fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    known
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(&word, &candidate.to_ascii_lowercase()), *candidate))
        .filter(|(distance, candidate)| *distance <= 2.max(candidate.len() / 4))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_found_and_strangers_are_not() {
        let kinds = ["Component", "API", "Resource"];
        assert_eq!(nearest("Compnent", &kinds), Some("Component"));
        assert_eq!(nearest("component", &kinds), Some("Component"));
        assert_eq!(nearest("catalog_pth", &["catalog_path", "path"]), Some("catalog_path"));
        assert_eq!(nearest("Deployment", &kinds), None);
        assert_eq!(nearest("ConfigMap", &kinds), None);
    }
}
