//! The grounded prompt: numbered sources with title and page, instructions to answer only
//! from them with `[n]` after each claim and to say when they do not hold the answer,
//! then the conversation so far and the question. The prompt is fitted to the model's
//! context by dropping the lowest-ranked sources first; the instructions are never cut.

use lectern_core::{Error, Result};
use lectern_llm::{ChatMessage, ChatRole, Generator};
use lectern_vector::text::Language;

use crate::retrieve::Passage;

/// What the model is told, always in full.
pub const INSTRUCTIONS: &str = "You answer questions using only the numbered sources below, which are passages from the user's documents.
Rules:
- Use only facts stated in the sources. Do not use outside knowledge.
- After every sentence that states a fact, write the number of the source it comes from in square brackets, like [1] or [2][3].
- If the sources do not contain the answer, say exactly: \"The documents do not contain the answer.\" and nothing else.
- Answer in the language of the question, briefly and precisely.";

/// The rule added when the question and its sources are in two different languages (both
/// told): a small model otherwise tends to answer in the sources' language, or to
/// translate a command. Said only then: every rule costs a small model attention, and
/// this one made it refuse more answerable questions in one language (EVALUATION).
pub const ACROSS_LANGUAGES: &str = "
- The sources are in another language than the question: still answer in the language of the question, and write names, numbers and commands as the sources write them.";

/// The answer given when the evidence is too weak to ask the model, or the model says so
/// (in English; see [`not_found`]). The model is told to say exactly this in any
/// language, so that its refusal is recognised ([`crate::cite::says_not_found`]
/// recognises translations too).
pub const NOT_FOUND: &str = "The documents do not contain the answer.";

/// [`NOT_FOUND`] in the language of the question, where Lectern has it and the language
/// can be told; in English otherwise.
pub fn not_found(question: &str) -> &'static str {
    match Language::detect(question) {
        Some(Language::German) => "Die Dokumente enthalten die Antwort nicht.",
        Some(Language::French) => "Les documents ne contiennent pas la réponse.",
        Some(Language::Spanish) => "Los documentos no contienen la respuesta.",
        Some(Language::Italian) => "I documenti non contengono la risposta.",
        Some(Language::Portuguese) => "Os documentos não contêm a resposta.",
        Some(Language::Dutch) => "De documenten bevatten het antwoord niet.",
        _ => NOT_FOUND,
    }
}

/// One source as the model sees it.
pub fn format_source(n: usize, p: &Passage) -> String {
    let pages = if p.pages.end > p.pages.start {
        format!("pages {}-{}", p.pages.start, p.pages.end)
    } else {
        format!("page {}", p.pages.start)
    };
    let text = p.text.trim();
    match &p.table_header {
        // Rows cut off from their table's header: the header first, so the model knows
        // what each column holds.
        Some(header) if text.starts_with('|') => {
            format!("[{n}] {} ({pages})\n{header}\n{text}", p.title)
        }
        _ => format!("[{n}] {} ({pages})\n{text}", p.title),
    }
}

/// The messages for a question with `sources` and the earlier turns of the conversation.
pub fn build(question: &str, sources: &[Passage], history: &[ChatMessage]) -> Vec<ChatMessage> {
    let mut system = String::from(INSTRUCTIONS);
    if across_languages(question, sources) {
        system.push_str(ACROSS_LANGUAGES);
    }
    system.push_str("\n\nSources:\n");
    for (i, p) in sources.iter().enumerate() {
        system.push('\n');
        system.push_str(&format_source(i + 1, p));
        system.push('\n');
    }
    let mut messages = vec![ChatMessage::new(ChatRole::System, system)];
    messages.extend(history.iter().cloned());
    messages.push(ChatMessage::new(ChatRole::User, question.trim()));
    messages
}

/// The question and the sources are in two languages, both told (the sources read together).
fn across_languages(question: &str, sources: &[Passage]) -> bool {
    let Some(asked) = Language::detect(question) else {
        return false;
    };
    let text: Vec<&str> = sources.iter().map(|p| p.text.as_str()).collect();
    Language::detect(&text.join("\n")).is_some_and(|written| written != asked)
}

/// The largest prompt that fits: as many of the best `sources` as the context allows
/// after reserving `max_tokens` for the answer, and of the history only the latest turns
/// that fit. Returns the messages and how many sources they hold.
pub async fn fit(
    model: &dyn Generator,
    question: &str,
    sources: &[Passage],
    history: &[ChatMessage],
    max_tokens: u32,
) -> Result<(Vec<ChatMessage>, usize)> {
    let budget = model.info().context_length.saturating_sub(max_tokens);
    let mut history = history.to_vec();
    let mut k = sources.len();
    loop {
        let messages = build(question, &sources[..k], &history);
        let tokens = model.count_tokens(&messages).await?;
        if tokens <= budget {
            return Ok((messages, k));
        }
        // Old turns go first, then sources from the lowest-ranked.
        if !history.is_empty() {
            history.drain(..history.len().min(2));
        } else if k > 0 {
            k -= 1;
        } else {
            return Err(Error::Invalid(format!(
                "the question and instructions take {tokens} tokens, more than the model's {budget} (context {} less {max_tokens} for the answer); ask a shorter question",
                model.info().context_length
            )));
        }
    }
}

/// The prompt that turns a follow-up ("and for part-timers?") into a question that stands
/// on its own, for retrieval.
pub fn rewrite_messages(history: &[ChatMessage], question: &str) -> Vec<ChatMessage> {
    let mut transcript = String::new();
    for m in history.iter().rev().take(6).rev() {
        let who = match m.role {
            ChatRole::User => "User",
            _ => "Assistant",
        };
        let content: String = m.content.chars().take(600).collect();
        transcript.push_str(&format!("{who}: {content}\n"));
    }
    vec![
        ChatMessage::new(
            ChatRole::System,
            "Rewrite the user's last question so that it can be understood without the conversation, in the language it was asked in. Keep every name, number and term. Reply with the rewritten question only.",
        ),
        ChatMessage::new(
            ChatRole::User,
            format!(
                "Conversation:\n{transcript}\nLast question: {}\n\nRewritten question:",
                question.trim()
            ),
        ),
    ]
}

/// The model's rewrite, cleaned; the original question when the rewrite is unusable.
pub fn clean_rewrite(rewrite: &str, question: &str) -> String {
    let line = rewrite
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .trim_start_matches("Rewritten question:")
        .trim()
        .trim_matches('"')
        .trim();
    if line.len() < 3 || line.chars().count() > 400 {
        question.trim().to_owned()
    } else {
        line.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use lectern_core::{PageRange, Span};
    use lectern_llm::testing::ScriptedGenerator;
    use uuid::Uuid;

    use super::*;

    fn passage(title: &str, pages: (u32, u32), text: &str) -> Passage {
        Passage {
            chunk_id: Uuid::nil(),
            workspace_id: Uuid::nil(),
            document_id: Uuid::nil(),
            document: format!("{title}.pdf"),
            title: title.into(),
            page: pages.0,
            pages: PageRange {
                start: pages.0,
                end: pages.1,
            },
            span: Span {
                start: 0,
                end: text.chars().count(),
            },
            text: text.into(),
            table_header: None,
            url: None,
            score: 0.5,
        }
    }

    fn transcript(messages: &[ChatMessage]) -> String {
        messages
            .iter()
            .map(|m| format!("<{}>\n{}\n", m.role.as_str(), m.content))
            .collect()
    }

    #[test]
    fn the_grounded_prompt() {
        let sources = [
            passage(
                "Staff handbook",
                (4, 4),
                "Employees are entitled to 30 days of annual leave.\n",
            ),
            passage(
                "Travel policy",
                (2, 3),
                "Economy class is booked for flights under six hours.",
            ),
        ];
        let history = [
            ChatMessage::new(ChatRole::User, "Who approves leave?"),
            ChatMessage::new(ChatRole::Assistant, "The line manager approves leave."),
        ];
        let messages = build("  How many days of leave do I get? ", &sources, &history);
        insta::assert_snapshot!(transcript(&messages));
    }

    #[test]
    fn the_rule_for_sources_in_another_language_comes_only_with_them() {
        let english = [passage(
            "Staff handbook",
            (4, 4),
            "Employees are entitled to thirty days of paid annual leave in every calendar year.",
        )];
        let german = [passage(
            "Personalhandbuch",
            (4, 4),
            "Alle Mitarbeiter haben Anspruch auf dreißig Urlaubstagen im Kalenderjahr. Nicht genommener Urlaub verfällt Ende März des folgenden Jahres.",
        )];
        let asked =
            "How many days of paid annual leave do the employees get in every calendar year?";
        assert_eq!(Language::detect(asked), Some(Language::English));
        let system =
            |sources: &[Passage], question: &str| build(question, sources, &[])[0].content.clone();
        assert!(system(&german, asked).contains(ACROSS_LANGUAGES));
        assert!(!system(&english, asked).contains(ACROSS_LANGUAGES));
        // A question too short to tell its language: no rule.
        assert!(!system(&german, "Leave?").contains(ACROSS_LANGUAGES));
        // The instructions stay the prompt's fixed beginning (the cached prefix).
        assert!(system(&german, asked).starts_with(INSTRUCTIONS));
    }

    #[test]
    fn not_found_is_said_in_the_language_of_the_question() {
        assert_eq!(
            not_found("Wie viele Urlaubstagen haben die Mitarbeiter im Kalenderjahr?"),
            "Die Dokumente enthalten die Antwort nicht."
        );
        assert_eq!(
            not_found("¿Cuántos días de vacaciones tienen los empleados cada año?"),
            "Los documentos no contienen la respuesta."
        );
        assert_eq!(
            not_found("How many days of annual leave do employees get each year?"),
            NOT_FOUND
        );
        assert_eq!(not_found("Urlaub?"), NOT_FOUND, "too short to tell");
        // Every translation is recognised as a refusal, should the model write it.
        for question in [
            "Wie viele Urlaubstage bekommen die Mitarbeiter im Jahr?",
            "Combien de jours de congés les salariés ont-ils chaque année ?",
            "¿Cuántos días de vacaciones tienen los empleados cada año?",
            "Quanti giorni di ferie hanno i dipendenti ogni anno?",
            "Quantos dias de férias os funcionários têm por ano?",
            "Hoeveel vakantiedagen krijgen de werknemers per jaar?",
        ] {
            assert!(
                crate::cite::says_not_found(not_found(question)),
                "{question}: {}",
                not_found(question)
            );
        }
    }

    #[test]
    fn rows_cut_off_from_their_table_come_with_its_header() {
        let header = "| Grade | Daily rate |\n| --- | --- |";
        let mut rows = passage("Rates", (2, 2), "| 7 | 149 EUR |\n| 8 | 156 EUR |");
        rows.table_header = Some(header.into());
        assert_eq!(
            format_source(1, &rows),
            format!("[1] Rates (page 2)\n{header}\n| 7 | 149 EUR |\n| 8 | 156 EUR |")
        );
        // Narrowed to prose after the table: no header.
        let mut prose = passage("Rates", (2, 2), "Rates change each April.");
        prose.table_header = Some(header.into());
        assert_eq!(
            format_source(1, &prose),
            "[1] Rates (page 2)\nRates change each April."
        );
    }

    #[test]
    fn the_follow_up_rewrite_prompt() {
        let history = [
            ChatMessage::new(ChatRole::User, "How many days of leave do staff get?"),
            ChatMessage::new(ChatRole::Assistant, "Staff get 30 days of annual leave."),
        ];
        insta::assert_snapshot!(transcript(&rewrite_messages(&history, "And part-timers?")));
        assert_eq!(
            clean_rewrite(
                "Rewritten question: \"How many days of leave do part-timers get?\"\nExtra",
                "And part-timers?"
            ),
            "How many days of leave do part-timers get?"
        );
        assert_eq!(clean_rewrite("  ", "And part-timers?"), "And part-timers?");
    }

    #[tokio::test]
    async fn fitting_drops_old_turns_then_the_lowest_ranked_sources() {
        let long = "word ".repeat(100);
        let sources = [
            passage("best", (1, 1), &long),
            passage("second", (2, 2), &long),
            passage("third", (3, 3), &long),
        ];
        let history = [
            ChatMessage::new(ChatRole::User, long.clone()),
            ChatMessage::new(ChatRole::Assistant, long.clone()),
        ];
        let instructions = INSTRUCTIONS.split_whitespace().count() as u32;
        // Room for the instructions, two sources, the question and 50 answer tokens.
        let context = instructions + 2 * 105 + 20 + 50;
        let model = ScriptedGenerator::new(context, Vec::new());
        let (messages, k) = fit(&model, "How long?", &sources, &history, 50)
            .await
            .unwrap();
        assert_eq!(k, 2);
        assert_eq!(messages.len(), 2, "the history went first");
        assert!(
            messages[0].content.starts_with(INSTRUCTIONS),
            "instructions are never cut"
        );
        assert!(
            messages[0].content.contains("[1] best") && messages[0].content.contains("[2] second")
        );
        assert!(!messages[0].content.contains("third"));

        let tiny = ScriptedGenerator::new(instructions + 50, Vec::new());
        let err = fit(&tiny, "How long?", &sources, &[], 50)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("shorter question"), "{err}");
    }
}
