"""Instruction templates for the FLAN 2021 datasets, written for flan_jax.

FLAN's PATTERNS format (see flan_jax/templates.py): dataset -> ten (input,
target) pairs with {field} placeholders naming the fields of
tasks/flan/datasets.py, and {options_} for the answer choices of
classification datasets. The last templates of a classification list are
"turned around" (the answer is given, something else is asked for), so they
offer no options.

Datasets with the same fields and the same kind of answer share one list
(like FLAN's collapsed tasks: ANLI R1-R3, MNLI matched/mismatched, ARC,
SQuAD v1/v2), and so do translation pairs and the binary sentiment sets.
Datasets absent from PATTERNS (none at present) would be specified in
datasets.py without registered tasks.
"""
from __future__ import annotations

_NLI3 = [
    ("Premise: {premise}\nHypothesis: {hypothesis}\n\nDoes the premise entail the hypothesis?"
     "\n\n{options_}", "{answer}"),
    ("{premise}\n\nBased on the text above, is it true that \"{hypothesis}\"?\n\n{options_}",
     "{answer}"),
    ("Read the following and decide whether the last sentence follows from the first.\n\n"
     "{premise}\n{hypothesis}\n\n{options_}", "{answer}"),
    ("If \"{premise}\", can we say that \"{hypothesis}\"?\n\n{options_}", "{answer}"),
    ("Statement one: {premise}\nStatement two: {hypothesis}\nIf statement one holds, does "
     "statement two hold too?\n{options_}", "{answer}"),
    ("Given that {premise} Would you agree that {hypothesis}\n\n{options_}", "{answer}"),
    ("Here is a claim: \"{hypothesis}\"\nAnd here is some evidence: \"{premise}\"\nDoes the "
     "evidence support the claim?\n\n{options_}", "{answer}"),
    ("Decide if the hypothesis is entailed.\nText: {premise}\nHypothesis: {hypothesis}\n"
     "{options_}\nAnswer:", "{answer}"),
    ("Write a sentence that the following text supports or rules out, with the verdict "
     "\"{answer}\".\n\n{premise}", "{hypothesis}"),
    ("Hypothesis: {hypothesis}\nThe answer to whether the hypothesis follows is \"{answer}\". "
     "Write a premise that fits.", "{premise}"),
]

_ANLI = [
    ("{context}\n\nFrom the paragraph above, can we infer that \"{hypothesis}\"?\n\n{options_}",
     "{answer}"),
    ("Paragraph: {context}\n\nClaim: {hypothesis}\n\nIs the claim supported by the paragraph?"
     "\n{options_}", "{answer}"),
    ("Read this text and answer the question below.\n\n{context}\n\nDoes it follow that "
     "{hypothesis}?\n\n{options_}", "{answer}"),
    ("{context}\nGiven only this, is \"{hypothesis}\" true?\n{options_}", "{answer}"),
    ("Context: {context}\nHypothesis: {hypothesis}\nChoose the relation between them.\n"
     "{options_}", "{answer}"),
    ("Consider the passage: {context}\n\nIs the next statement true? {hypothesis}\n\n{options_}",
     "{answer}"),
    ("Does the text below entail the sentence \"{hypothesis}\"?\n\n{context}\n\n{options_}",
     "{answer}"),
    ("{context}\n\nQuestion: {hypothesis} True or not?\n{options_}", "{answer}"),
    ("{context}\n\nWrite one sentence about the paragraph above for which the question "
     "\"does it follow?\" has the answer \"{answer}\".", "{hypothesis}"),
    ("Write a short paragraph. Someone should be able to judge the statement \"{hypothesis}\" "
     "against it and answer \"{answer}\".", "{context}"),
]

_RTE = [
    ("{premise}\n\nQuestion with options: does this mean that \"{hypothesis}\"?\n\n{options_}",
     "{answer}"),
    ("Text: {premise}\nCan we conclude the following? {hypothesis}\n{options_}", "{answer}"),
    ("{premise}\nIs the sentence \"{hypothesis}\" true, given the passage?\n\n{options_}",
     "{answer}"),
    ("Passage: {premise}\n\nDoes the passage imply that {hypothesis}\n\n{options_}",
     "{answer}"),
    ("Determine whether the hypothesis is entailed by the text.\n\nText: {premise}\n"
     "Hypothesis: {hypothesis}\n\n{options_}", "{answer}"),
    ("{premise}\n\nBased on that, is it right to say \"{hypothesis}\"?\n{options_}",
     "{answer}"),
    ("I read this: \"{premise}\" Does it tell me that \"{hypothesis}\"?\n\n{options_}",
     "{answer}"),
    ("Sentence A: {premise}\nSentence B: {hypothesis}\nDoes A entail B?\n{options_}",
     "{answer}"),
    ("{premise}\n\nWrite a sentence that this text entails, or one it does not if the answer "
     "should be \"no\". Answer: {answer}", "{hypothesis}"),
    ("Write a short news-like passage from which \"{hypothesis}\" can be judged; the judgement "
     "should be \"{answer}\".", "{premise}"),
]

_CB = [
    ("{premise}\n\nGiven this, is it true that \"{hypothesis}\"?\n\n{options_}", "{answer}"),
    ("Dialogue or text: {premise}\nHypothesis: {hypothesis}\nDoes the text entail the "
     "hypothesis?\n{options_}", "{answer}"),
    ("Read: {premise}\n\nCan we infer: {hypothesis}?\n\n{options_}", "{answer}"),
    ("{premise}\nFrom what was said, does it follow that {hypothesis}\n{options_}", "{answer}"),
    ("Here is a passage.\n{premise}\nJudge the statement \"{hypothesis}\" against it.\n\n"
     "{options_}", "{answer}"),
    ("Premise: {premise}\n\nHypothesis: {hypothesis}\n\nIs the hypothesis supported?\n"
     "{options_}", "{answer}"),
    ("Suppose {premise} Is \"{hypothesis}\" then true?\n{options_}", "{answer}"),
    ("{premise}\n\nQuestion: {hypothesis}?\n{options_}", "{answer}"),
    ("{premise}\n\nWrite a statement about this text whose truth is \"{answer}\".",
     "{hypothesis}"),
    ("Make up a short conversation after which \"{hypothesis}\" is judged \"{answer}\".",
     "{premise}"),
]

_SQUAD = [
    ("Read this and answer the question.\n\n{context}\n\n{question}", "{answer}"),
    ("{context}\n\nQ: {question}", "{answer}"),
    ("Passage about {title}: {context}\n\nAnswer the question using the passage: {question}",
     "{answer}"),
    ("Context: {context}\n\nQuestion: {question}\n\nAnswer:", "{answer}"),
    ("{question}\n\nFind the answer in this text: {context}", "{answer}"),
    ("The following is about {title}.\n\n{context}\n\nWhat is the answer to this question: "
     "{question}", "{answer}"),
    ("Answer the question about {title} from the article.\n\nArticle: {context}\n\n"
     "{question}", "{answer}"),
    ("{context}\n\nBased on the article, {question}", "{answer}"),
    ("{context}\n\nWrite a question about this passage whose answer is \"{answer}\".",
     "{question}"),
    ("Here is an answer: {answer}\nAnd the text it came from: {context}\nWhat was the "
     "question?", "{question}"),
]

_BOOL_Q = [
    ("{text}\n\nIs the answer to this question yes or no? {question}\n\n{options_}",
     "{answer}"),
    ("Article: {title}\n\n{text}\n\nQuestion: {question}?\n{options_}", "{answer}"),
    ("Read the passage and answer the question.\n\n{text}\n\n{question}?\n\n{options_}",
     "{answer}"),
    ("{text}\n\nBased on this, {question}?\n\n{options_}", "{answer}"),
    ("Passage ({title}): {text}\nQ: {question}?\n{options_}\nA:", "{answer}"),
    ("{question}?\n\nUse this text to decide: {text}\n\n{options_}", "{answer}"),
    ("Here is some information about {title}.\n{text}\n\nTrue or false, {question}?\n"
     "{options_}", "{answer}"),
    ("Yes/no question: {question}\nContext: {text}\n{options_}", "{answer}"),
    ("{text}\n\nAsk a yes-or-no question about this passage whose answer is {answer}.",
     "{question}"),
    ("Write a paragraph about {title} that answers the question \"{question}?\" with "
     "\"{answer}\".", "{text}"),
]

_TRANSLATION = [
    ("{sent1}\n\nTranslate to {lang2}", "{sent2}"),
    ("Translate the following sentence from {lang1} into {lang2}.\n\n{sent1}", "{sent2}"),
    ("How would you say this in {lang2}?\n{sent1}", "{sent2}"),
    ("{lang1}: {sent1}\n{lang2}:", "{sent2}"),
    ("Please render this in {lang2}: \"{sent1}\"", "{sent2}"),
    ("{sent2}\n\nTranslate to {lang1}", "{sent1}"),
    ("What does this {lang2} text mean in {lang1}?\n\n{sent2}", "{sent1}"),
    ("Give the {lang1} translation of: {sent2}", "{sent1}"),
    ("{lang2} sentence: {sent2}\n{lang1} sentence:", "{sent1}"),
    ("Translate \"{sent1}\" into {lang2}.", "{sent2}"),
]

_COMMON_GEN = [
    ("Concepts: {concepts}\n\nWrite a sentence that uses all of these concepts.", "{target}"),
    ("Make a sentence containing these words: {concepts}", "{target}"),
    ("Write one everyday sentence about {concepts}.", "{target}"),
    ("Here are some keywords: {concepts}. Describe a scene that involves them all.",
     "{target}"),
    ("Use the following words in a single sentence.\n\n{concepts}", "{target}"),
    ("Keywords: {concepts}\nSentence:", "{target}"),
    ("Combine these concepts into a natural sentence: {concepts}", "{target}"),
    ("Generate a sentence that mentions each of {concepts}.", "{target}"),
    ("{target}\n\nWhich key concepts does this sentence contain?", "{concepts}"),
    ("List the main words of this sentence, separated by commas: {target}", "{concepts}"),
]

_STORY_CLOZE = [
    ("{context}\n\nWhat is the best ending for this story?\n{options_}", "{answer}"),
    ("Finish the story.\n\n{context}\n\n{options_}", "{answer}"),
    ("Story so far: {context}\nWhich sentence comes next?\n\n{options_}", "{answer}"),
    ("{context}\nHow does the story most likely end?\n{options_}", "{answer}"),
    ("Choose the sentence that completes this four-sentence story sensibly.\n\n{context}\n\n"
     "{options_}", "{answer}"),
    ("Read the beginning of a story: {context}\n\nPick an ending.\n{options_}", "{answer}"),
    ("{context}\n\nWhat happened next?\n{options_}", "{answer}"),
    ("Complete the story below with one of the options.\n{context}\n{options_}", "{answer}"),
    ("Write the first four sentences of a story that ends with: {answer}", "{context}"),
    ("The last line of a short story is \"{answer}\" Write what comes before it.",
     "{context}"),
]

_COPA = [
    ("{premise} What was the {question}?\n\n{options_}", "{answer}"),
    ("Premise: {premise}\nWhat is the more plausible {question}?\n{options_}", "{answer}"),
    ("{premise} This happened {connective}...\n\n{options_}", "{answer}"),
    ("Pick the more likely {question} of the following event.\n\nEvent: {premise}\n\n"
     "{options_}", "{answer}"),
    ("Here is a situation: {premise}\nWhich option is its {question}?\n{options_}",
     "{answer}"),
    ("{premise}\n\nChoose the best {question}:\n{options_}", "{answer}"),
    ("Complete the sentence: {premise} ... {connective}\n{options_}", "{answer}"),
    ("Event: \"{premise}\" Question: {question}?\n\n{options_}", "{answer}"),
    ("{answer}\n\nWrite a sentence describing an event for which this is the {question}.",
     "{premise}"),
    ("Describe something that happened, {connective} this: {answer}", "{premise}"),
]

_SUMMARY = [
    ("Summarize this article in one sentence.\n\n{text}", "{summary}"),
    ("{text}\n\nWhat is a short summary of the text above?", "{summary}"),
    ("Article: {text}\n\nSummary:", "{summary}"),
    ("Write a brief summary of the following.\n{text}", "{summary}"),
    ("{text}\n\nTL;DR:", "{summary}"),
    ("Condense this news story into a sentence or two:\n\n{text}", "{summary}"),
    ("Give the gist of this article.\n\n{text}", "{summary}"),
    ("{text}\nSum up the main point.", "{summary}"),
    ("Write a news article that this summary could describe.\n\n{summary}", "{text}"),
    ("Summary: {summary}\n\nExpand this into a full article.", "{text}"),
]

_ARC = [
    ("{question}\n\n{options_}", "{answer}"),
    ("Answer this science question.\n\n{question}\n{options_}", "{answer}"),
    ("Question: {question}\n\nChoose the correct answer.\n{options_}", "{answer}"),
    ("{question}\nPick one of these:\n{options_}", "{answer}"),
    ("Grade-school science quiz.\n{question}\n\n{options_}\nAnswer:", "{answer}"),
    ("Which of the options answers the question \"{question}\"?\n\n{options_}", "{answer}"),
    ("Test question: {question}\n{options_}", "{answer}"),
    ("Select the best answer.\n\n{question}\n\n{options_}", "{answer}"),
    ("Write a science question whose answer is \"{answer}\".", "{question}"),
    ("The answer is {answer}. What multiple-choice science question might it answer?",
     "{question}"),
]

_CLOSED_BOOK_QA = [
    ("{question}", "{answer}"),
    ("Answer this question.\n\n{question}", "{answer}"),
    ("Q: {question}\nA:", "{answer}"),
    ("Trivia question: {question}", "{answer}"),
    ("Please answer from what you know: {question}", "{answer}"),
    ("What is the answer to this question? {question}", "{answer}"),
    ("Question: {question}\nAnswer:", "{answer}"),
    ("Give a short answer. {question}", "{answer}"),
    ("Write a trivia question whose answer is {answer}.", "{question}"),
    ("Answer: {answer}\nWhat might the question have been?", "{question}"),
]

_PARAPHRASE = [
    ("Sentence 1: {sentence1}\nSentence 2: {sentence2}\n\nDo these sentences mean the same "
     "thing?\n{options_}", "{answer}"),
    ("\"{sentence1}\" and \"{sentence2}\"\n\nAre these two sentences paraphrases of each "
     "other?\n\n{options_}", "{answer}"),
    ("{sentence1}\n{sentence2}\n\nDo the two sentences say the same thing?\n{options_}",
     "{answer}"),
    ("Is the second sentence a rewording of the first?\n\nFirst: {sentence1}\nSecond: "
     "{sentence2}\n\n{options_}", "{answer}"),
    ("Compare: {sentence1} / {sentence2}\nSame meaning?\n{options_}", "{answer}"),
    ("Here are two sentences.\n{sentence1}\n{sentence2}\nAre they equivalent?\n{options_}",
     "{answer}"),
    ("Does \"{sentence2}\" express the same idea as \"{sentence1}\"?\n{options_}", "{answer}"),
    ("Determine whether the two sentences are semantically equivalent.\n1. {sentence1}\n2. "
     "{sentence2}\n{options_}", "{answer}"),
    ("{sentence1}\n\nWrite a sentence that is a paraphrase of the sentence above if the answer "
     "is \"yes\", and a close but different one if it is \"no\". Answer: {answer}",
     "{sentence2}"),
    ("Rephrase or alter this sentence (paraphrase: {answer}).\n\n{sentence2}", "{sentence1}"),
]

_SENTIMENT = [
    ("{text}\n\nWhat is the sentiment of this text?\n{options_}", "{answer}"),
    ("Is the following review positive or negative?\n\n{text}\n\n{options_}", "{answer}"),
    ("Review: {text}\nHow does the writer feel?\n{options_}", "{answer}"),
    ("{text}\nDid the author like it?\n\n{options_}", "{answer}"),
    ("Classify the sentiment.\n\nText: {text}\n\n{options_}", "{answer}"),
    ("Here is what someone wrote: \"{text}\"\nIs the tone positive or negative?\n{options_}",
     "{answer}"),
    ("Determine the attitude expressed in this text.\n{text}\n{options_}", "{answer}"),
    ("{text}\n\nOverall, this is\n{options_}", "{answer}"),
    ("Write a {answer} review.", "{text}"),
    ("Generate a short text with {answer} sentiment.", "{text}"),
]

_FIX_PUNCT = [
    ("Add punctuation to this text: {no_punct}", "{answer}"),
    ("{no_punct}\n\nPunctuate the sentence above.", "{answer}"),
    ("The following is missing its punctuation. Restore it.\n\n{no_punct}", "{answer}"),
    ("Rewrite with correct punctuation: {no_punct}", "{answer}"),
    ("Insert commas, periods and other punctuation where they belong.\n{no_punct}",
     "{answer}"),
    ("Text without punctuation: {no_punct}\nPunctuated text:", "{answer}"),
    ("Fix the punctuation of this sentence.\n\n{no_punct}", "{answer}"),
    ("Please punctuate: {no_punct}", "{answer}"),
    ("Remove every punctuation mark from this text.\n\n{answer}", "{no_punct}"),
    ("{answer}\n\nWrite the sentence above without any punctuation.", "{no_punct}"),
]

_WINOGRANDE = [
    ("How does this sentence end?\n\n{context}\n\n{options_}", "{answer}"),
    ("Complete the sentence: {context}\n{options_}", "{answer}"),
    ("{context}\n\nWhich continuation makes sense?\n{options_}", "{answer}"),
    ("Choose the right ending.\n{context}...\n\n{options_}", "{answer}"),
    ("Fill in the rest of the sentence so that it is logical.\n\n{context}\n{options_}",
     "{answer}"),
    ("{context}\nWhat comes next?\n\n{options_}", "{answer}"),
    ("Sentence start: {context}\nPick the sensible completion.\n{options_}", "{answer}"),
    ("Which option correctly finishes this sentence? {context}\n\n{options_}", "{answer}"),
    ("Write the beginning of a sentence that could be completed by \"{answer}\".",
     "{context}"),
    ("The end of a sentence is \"{answer}\". Write its first part.", "{context}"),
]

_MATH = [
    ("{question}", "{answer}"),
    ("Solve this problem.\n\n{question}", "{answer}"),
    ("Math problem: {question}\nAnswer:", "{answer}"),
    ("{question}\nWhat is the solution?", "{answer}"),
    ("Work out the answer: {question}", "{answer}"),
    ("Find the value asked for. {question}", "{answer}"),
    ("Problem: {question}\n\nSolution:", "{answer}"),
    ("Answer the following algebra question.\n{question}", "{answer}"),
    ("Write a linear equation problem whose solution is {answer}.", "{question}"),
    ("The answer is {answer}. Make up an algebra problem with that answer.", "{question}"),
]

_QUAC = [
    ("{background}\n\n{context}\n\nQuestion about {title}: {question}", "{answer}"),
    ("Background: {background}\nSection: {context}\n\nAnswer using a span from the section: "
     "{question}", "{answer}"),
    ("Topic: {title}\n\n{context}\n\nQ: {question}\nA:", "{answer}"),
    ("Read the text about {title} and answer.\n\n{context}\n\n{question}", "{answer}"),
    ("{context}\n\n{question}\n\nQuote the text in your answer.", "{answer}"),
    ("Context on {title}: {background}\n\n{context}\n\nWhat is the answer to \"{question}\"?",
     "{answer}"),
    ("{question}\n\nFind it in this passage: {context}", "{answer}"),
    ("A conversation about {title}. Text: {context}\nUser asks: {question}\nReply:",
     "{answer}"),
    ("{context}\n\nAsk a question about {title} that this text answers with: {answer}",
     "{question}"),
    ("Answer: {answer}\n\nGiven the passage below, what was asked?\n\n{context}",
     "{question}"),
]

_WIC = [
    ("{sentence1}\n{sentence2}\n\nDoes the word \"{word}\" mean the same thing in these two "
     "sentences?\n{options_}", "{answer}"),
    ("Here is a word: {word}\nFirst use: {sentence1}\nSecond use: {sentence2}\n\nDoes it have "
     "the same meaning in both?\n{options_}", "{answer}"),
    ("Compare the meaning of \"{word}\" in \"{sentence1}\" and in \"{sentence2}\".\n\n"
     "{options_}", "{answer}"),
    ("Sentence A: {sentence1}\nSentence B: {sentence2}\nIs \"{word}\" used in the same sense?"
     "\n{options_}", "{answer}"),
    ("Word sense question for \"{word}\".\n1. {sentence1}\n2. {sentence2}\n{options_}",
     "{answer}"),
    ("{sentence1}\n\nIn the sentence above and in \"{sentence2}\", does {word} mean the same?"
     "\n\n{options_}", "{answer}"),
    ("Decide whether the two sentences use {word} with one meaning or two.\n{sentence1}\n"
     "{sentence2}\n{options_}", "{answer}"),
    ("Meaning of \"{word}\": \"{sentence1}\" versus \"{sentence2}\"\n{options_}", "{answer}"),
    ("Write two sentences that use the word \"{word}\" with {answer}.\nFirst sentence: "
     "{sentence1}\nSecond sentence:", "{sentence2}"),
    ("The word \"{word}\" has {answer} in a pair of sentences. The second one is: "
     "{sentence2}\nWrite the first.", "{sentence1}"),
]

_COLA = [
    ("Sentence: \"{sentence}\"\nIs this sentence grammatically acceptable?\n{options_}",
     "{answer}"),
    ("{sentence}\n\nHow would a linguist rate this sentence?\n{options_}", "{answer}"),
    ("Judge the grammaticality of the following.\n\n{sentence}\n\n{options_}", "{answer}"),
    ("Is \"{sentence}\" a well-formed English sentence?\n{options_}", "{answer}"),
    ("Check this sentence: {sentence}\n\n{options_}", "{answer}"),
    ("{sentence}\nWould a native speaker accept this sentence?\n{options_}", "{answer}"),
    ("Grammar test.\n{sentence}\n{options_}\nVerdict:", "{answer}"),
    ("Rate the sentence below for acceptability.\n\n\"{sentence}\"\n{options_}", "{answer}"),
    ("Write a sentence that a linguist would judge {answer}.", "{sentence}"),
    ("Produce an {answer} English sentence.", "{sentence}"),
]

_TREC = [
    ("What type of thing is this question asking for?\n\n{text}\n\n{options_}", "{answer}"),
    ("{text}\n\nWhat kind of answer would this question have?\n{options_}", "{answer}"),
    ("Classify the question by its expected answer.\nQuestion: {text}\n{options_}",
     "{answer}"),
    ("Question: {text}\nIs the answer a description, an entity, an abbreviation, a person, a "
     "number or a place?\n{options_}", "{answer}"),
    ("{text}\nWhich category does the answer fall into?\n\n{options_}", "{answer}"),
    ("Determine the answer type of: {text}\n{options_}", "{answer}"),
    ("Here is a question: \"{text}\" Pick its answer category.\n{options_}", "{answer}"),
    ("{text}\n\nAnswer type:\n{options_}", "{answer}"),
    ("Write a question whose answer would be of the type \"{answer}\".", "{text}"),
    ("Ask something that needs a {answer} as an answer.", "{text}"),
]

_COSMOS_QA = [
    ("{context}\n\nQuestion: {question}\n{options_}", "{answer}"),
    ("Read the text and answer the question.\n\n{context}\n\n{question}\n\n{options_}",
     "{answer}"),
    ("{context}\n\nAnswer this using common sense: {question}\n{options_}", "{answer}"),
    ("Story: {context}\nQ: {question}\n{options_}\nA:", "{answer}"),
    ("{question}\n\nThink about this passage first.\n{context}\n\n{options_}", "{answer}"),
    ("Based on the passage, {question}\n\n{context}\n\n{options_}", "{answer}"),
    ("Context: {context}\nChoose the best answer to \"{question}\"\n{options_}", "{answer}"),
    ("{context}\nWhich option best answers: {question}\n{options_}", "{answer}"),
    ("{context}\n\nWrite a question about this text that is answered by \"{answer}\".",
     "{question}"),
    ("Given the answer \"{answer}\" and the passage below, what was the question?\n\n"
     "{context}", "{question}"),
]

_GIGAWORD = [
    ("Write a headline for this sentence.\n\n{text}", "{summary}"),
    ("{text}\n\nGive this a short title.", "{summary}"),
    ("Sentence: {text}\nHeadline:", "{summary}"),
    ("Shorten this news sentence into a headline: {text}", "{summary}"),
    ("What would a newspaper headline for the following be?\n{text}", "{summary}"),
    ("{text}\nSummarize in a few words.", "{summary}"),
    ("Compress the sentence below to its key point.\n\n{text}", "{summary}"),
    ("Turn this into a headline: \"{text}\"", "{summary}"),
    ("Headline: {summary}\n\nWrite the opening sentence of the story.", "{text}"),
    ("Write one news sentence that fits the headline \"{summary}\".", "{text}"),
]

_AESLC = [
    ("Write a subject line for this email.\n\n{body}", "{subject}"),
    ("{body}\n\nWhat is a good subject for the email above?", "{subject}"),
    ("Email: {body}\nSubject:", "{subject}"),
    ("Give this message a short subject line: {body}", "{subject}"),
    ("Suggest an email subject.\n\n{body}", "{subject}"),
    ("{body}\n\nSubject line:", "{subject}"),
    ("Here is the body of an email. Title it.\n{body}", "{subject}"),
    ("What should the subject of this email be? {body}", "{subject}"),
    ("Write an email with the subject \"{subject}\".", "{body}"),
    ("Subject: {subject}\n\nWrite the email body.", "{body}"),
]

_SAMSUM = [
    ("Summarize this conversation.\n\n{dialogue}", "{summary}"),
    ("{dialogue}\n\nWhat were they talking about? Answer in a sentence or two.", "{summary}"),
    ("Dialogue:\n{dialogue}\n\nSummary:", "{summary}"),
    ("Write a brief summary of the chat below.\n{dialogue}", "{summary}"),
    ("{dialogue}\n\nBriefly, what happened in this conversation?", "{summary}"),
    ("Read the messages and sum them up.\n\n{dialogue}", "{summary}"),
    ("Chat log:\n{dialogue}\nGive the gist.", "{summary}"),
    ("{dialogue}\nTL;DR:", "{summary}"),
    ("Write a chat conversation that this summary describes.\n\n{summary}", "{dialogue}"),
    ("Summary: {summary}\nWrite the messages that led to it.", "{dialogue}"),
]

_AG_NEWS = [
    ("{title}\n\n{text}\n\nWhich topic is this article about?\n{options_}", "{answer}"),
    ("What section of a newspaper does this belong in?\n\n{title}: {text}\n\n{options_}",
     "{answer}"),
    ("Headline: {title}\nStory: {text}\nTopic?\n{options_}", "{answer}"),
    ("Classify the news story by topic.\n\n{text}\n\n{options_}", "{answer}"),
    ("{text}\nIs this about world news, sports, business or science and technology?\n"
     "{options_}", "{answer}"),
    ("Pick the category of this article: \"{title}\" {text}\n\n{options_}", "{answer}"),
    ("News: {title}. {text}\n\nCategory:\n{options_}", "{answer}"),
    ("Read the following and say what it is mainly about.\n{title}\n{text}\n{options_}",
     "{answer}"),
    ("Write a short {answer} news story.", "{text}"),
    ("Write a headline for a {answer} article.", "{title}"),
]

_STRUCTURED = [
    ("Write a sentence expressing these facts.\n\n{triples}", "{target}"),
    ("Data: {triples}\n\nDescribe this data in English.", "{target}"),
    ("Turn the following triples into a sentence: {triples}", "{target}"),
    ("{triples}\n\nWhat sentence states all of the above?", "{target}"),
    ("Facts: {triples}\nSentence:", "{target}"),
    ("Generate a fluent description of this information.\n{triples}", "{target}"),
    ("Verbalize: {triples}", "{target}"),
    ("Express the relations below as natural text.\n\n{triples}", "{target}"),
    ("{target}\n\nExtract the facts from this sentence as subject, relation, object triples.",
     "{triples}"),
    ("What structured data does this sentence contain?\n{target}", "{triples}"),
]

_E2E = [
    ("Write a sentence about a restaurant using all of this information.\n\n{meaning}",
     "{target}"),
    ("Restaurant data: {meaning}\n\nDescribe it in a sentence.", "{target}"),
    ("{meaning}\n\nWrite a short review-like sentence from these attributes.", "{target}"),
    ("Attributes: {meaning}\nDescription:", "{target}"),
    ("Turn this restaurant record into natural language: {meaning}", "{target}"),
    ("Describe the place given the following facts.\n{meaning}", "{target}"),
    ("Generate a sentence that mentions each attribute: {meaning}", "{target}"),
    ("{meaning}\nWhat could a guidebook say about this place?", "{target}"),
    ("{target}\n\nList the restaurant attributes this sentence mentions.", "{meaning}"),
    ("Extract the structured data from this description: {target}", "{meaning}"),
]

_QQP = [
    ("{question1}\n{question2}\n\nAre these two questions asking the same thing?\n{options_}",
     "{answer}"),
    ("Question A: {question1}\nQuestion B: {question2}\nWould one answer serve both?\n"
     "{options_}", "{answer}"),
    ("Do \"{question1}\" and \"{question2}\" have the same meaning?\n\n{options_}", "{answer}"),
    ("Is the second question a duplicate of the first?\n\n1. {question1}\n2. {question2}\n\n"
     "{options_}", "{answer}"),
    ("Someone asked \"{question1}\" Another person asked \"{question2}\" Same question?\n"
     "{options_}", "{answer}"),
    ("Decide if these are duplicate questions.\n{question1}\n{question2}\n{options_}",
     "{answer}"),
    ("{question1}\n\nIs this the same question as: {question2}\n{options_}", "{answer}"),
    ("Forum questions: [{question1}] [{question2}]. Merge them?\n{options_}", "{answer}"),
    ("{question1}\n\nWrite another question that is a duplicate of this one if the answer is "
     "yes, otherwise a related but different one. Answer: {answer}", "{question2}"),
    ("Write a question. Its relation to \"{question2}\" as a duplicate should be: {answer}",
     "{question1}"),
]

_STSB_PATTERNS = [
    ("{sentence1}\n{sentence2}\n\nRate how similar these sentences are from 0 (unrelated) to 5 "
     "(same meaning).\n{options_}", "{answer}"),
    ("Sentence 1: {sentence1}\nSentence 2: {sentence2}\nSimilarity score (0-5)?\n{options_}",
     "{answer}"),
    ("How close in meaning are \"{sentence1}\" and \"{sentence2}\"? Give a score out of 5.\n"
     "{options_}", "{answer}"),
    ("On a scale of 0 to 5, how much do these two sentences mean the same thing?\n\n"
     "{sentence1}\n{sentence2}\n\n{options_}", "{answer}"),
    ("Score the semantic similarity.\nA: {sentence1}\nB: {sentence2}\n{options_}",
     "{answer}"),
    ("{sentence1}\n\nCompared with \"{sentence2}\", how similar is it (0-5)?\n{options_}",
     "{answer}"),
    ("Give a similarity rating from 0 to 5.\n{sentence1}\n{sentence2}\n{options_}",
     "{answer}"),
    ("Two sentences: \"{sentence1}\" / \"{sentence2}\". Similarity (0 = none, 5 = identical):\n"
     "{options_}", "{answer}"),
    ("{sentence1}\n\nWrite a sentence whose similarity to the one above is {answer} out of 5.",
     "{sentence2}"),
    ("Write a sentence with a similarity of {answer} (out of 5) to: {sentence2}",
     "{sentence1}"),
]

_QNLI = [
    ("Does the sentence \"{sentence}\" answer the question \"{question}\"?\n{options_}",
     "{answer}"),
    ("Question: {question}\nSentence: {sentence}\nDoes the sentence contain the answer?\n"
     "{options_}", "{answer}"),
    ("{question}\n\nIs the answer to the question above found in: {sentence}\n\n{options_}",
     "{answer}"),
    ("Can this question be answered from the sentence below?\n\n{question}\n{sentence}\n\n"
     "{options_}", "{answer}"),
    ("Sentence: {sentence}\n\nDoes it tell us: {question}\n{options_}", "{answer}"),
    ("Check whether the sentence answers the question.\nQ: {question}\nS: {sentence}\n"
     "{options_}", "{answer}"),
    ("{sentence}\nWould this be a good answer to \"{question}\"?\n{options_}", "{answer}"),
    ("Is \"{question}\" answered by \"{sentence}\"?\n\n{options_}", "{answer}"),
    ("{sentence}\n\nWrite a question that this sentence answers (or, if the answer is \"no\", "
     "one it does not). Answer: {answer}", "{question}"),
    ("Question: {question}\nWrite a sentence that answers it: {answer}.", "{sentence}"),
]

_WNLI = [
    ("{sentence1}\n\nDoes it follow that \"{sentence2}\"?\n{options_}", "{answer}"),
    ("Sentence 1: {sentence1}\nSentence 2: {sentence2}\nIs sentence 2 true given sentence 1?\n"
     "{options_}", "{answer}"),
    ("If \"{sentence1}\", then is \"{sentence2}\" correct?\n\n{options_}", "{answer}"),
    ("Read: {sentence1}\nDoes this mean: {sentence2}\n{options_}", "{answer}"),
    ("{sentence1}\nWho is meant here? Is it right that {sentence2}\n{options_}", "{answer}"),
    ("Decide whether the second sentence is implied by the first.\n{sentence1}\n{sentence2}\n"
     "{options_}", "{answer}"),
    ("Premise: {sentence1}\nHypothesis: {sentence2}\n{options_}", "{answer}"),
    ("\"{sentence1}\" Therefore, \"{sentence2}\" True?\n{options_}", "{answer}"),
    ("{sentence1}\n\nRestate who did what in one sentence, correctly if the answer is yes: "
     "{answer}", "{sentence2}"),
    ("Write a sentence with a pronoun so that \"{sentence2}\" is a {answer} reading of it.",
     "{sentence1}"),
]

_PIQA = [
    ("Goal: {goal}\n\nWhich way is better to reach this goal?\n{options_}", "{answer}"),
    ("How would you do this? {goal}\n\n{options_}", "{answer}"),
    ("{goal}\nPick the most sensible method.\n{options_}", "{answer}"),
    ("Here is a task: {goal}\nWhich solution works?\n\n{options_}", "{answer}"),
    ("Choose the physically correct way to accomplish the following.\n\n{goal}\n\n{options_}",
     "{answer}"),
    ("To achieve \"{goal}\", what should you do?\n{options_}", "{answer}"),
    ("Practical question: {goal}\n{options_}\nAnswer:", "{answer}"),
    ("{goal}\n\nWhich of these makes more sense?\n{options_}", "{answer}"),
    ("What goal does this achieve?\n\n{answer}", "{goal}"),
    ("Write a goal someone could reach by doing the following: {answer}", "{goal}"),
]

_HELLASWAG = [
    ("{context}\n\nWhat happens next?\n{options_}", "{answer}"),
    ("Activity: {activity}\n{context}\n\nHow does this continue?\n{options_}", "{answer}"),
    ("Complete the description.\n\n{context}\n\n{options_}", "{answer}"),
    ("{context}\nChoose the most likely continuation.\n{options_}", "{answer}"),
    ("This is about {activity}. {context}\n\nWhich ending fits?\n{options_}", "{answer}"),
    ("Continue the text: {context}\n{options_}", "{answer}"),
    ("Read the start of a how-to or video description and pick the next part.\n{context}\n\n"
     "{options_}", "{answer}"),
    ("{context} ...\n\nWhat comes next?\n{options_}", "{answer}"),
    ("Write the beginning of a description of {activity} that leads to: {answer}",
     "{context}"),
    ("Here is the ending of a scene: {answer}\nWrite what came right before it.",
     "{context}"),
]

_WSC = [
    ("{context}\n\nIn the passage above, does \"{text2}\" refer to \"{text1}\"?\n{options_}",
     "{answer}"),
    ("Text: {context}\nDoes the pronoun \"{text2}\" stand for {text1}?\n{options_}",
     "{answer}"),
    ("{context}\nIs \"{text2}\" the same as \"{text1}\" here?\n\n{options_}", "{answer}"),
    ("Coreference question. In \"{context}\", who or what is \"{text2}\"? Is it {text1}?\n"
     "{options_}", "{answer}"),
    ("Read the sentence and answer.\n\n{context}\n\nDoes {text2} mean {text1}?\n{options_}",
     "{answer}"),
    ("{context}\n\nHere, \"{text2}\" refers to \"{text1}\". True or false?\n{options_}",
     "{answer}"),
    ("Sentence: {context}\nPronoun: {text2}\nCandidate: {text1}\nMatch?\n{options_}",
     "{answer}"),
    ("Does \"{text2}\" point back to \"{text1}\" in the following?\n{context}\n{options_}",
     "{answer}"),
    ("Write a sentence in which the pronoun \"{text2}\" does ({answer}) refer to "
     "\"{text1}\".", "{context}"),
    ("{context}\n\nName the noun phrase that \"{text2}\" is being compared with (answer: "
     "{answer}).", "{text1}"),
]

_DPR = [
    ("{sentence}\n\nWho is \"{pronoun}\" in this sentence?\n{options_}", "{answer}"),
    ("In the sentence \"{sentence}\", what does the pronoun \"{pronoun}\" refer to?\n"
     "{options_}", "{answer}"),
    ("Sentence: {sentence}\nPronoun: {pronoun}\nReferent?\n{options_}", "{answer}"),
    ("{sentence}\nWhich candidate does \"{pronoun}\" stand for?\n\n{options_}", "{answer}"),
    ("Resolve the pronoun \"{pronoun}\".\n\n{sentence}\n\n{options_}", "{answer}"),
    ("Read: {sentence}\nHere, {pronoun} means\n{options_}", "{answer}"),
    ("Who does \"{pronoun}\" point to? {sentence}\n{options_}", "{answer}"),
    ("{sentence}\n\nIn this sentence, the word \"{pronoun}\" refers to:\n{options_}",
     "{answer}"),
    ("Write a sentence where the pronoun \"{pronoun}\" refers to {answer}.", "{sentence}"),
    ("{sentence}\n\n{answer} is the referent of which pronoun in the sentence?",
     "{pronoun}"),
]

_DROP = [
    ("Read the passage and answer the question.\n\n{context}\n\n{question}", "{answer}"),
    ("{context}\n\nQuestion: {question}\nAnswer (a number, date or short span):",
     "{answer}"),
    ("Passage: {context}\n\n{question}", "{answer}"),
    ("{context}\nAnswer this question, doing any counting or arithmetic needed: {question}",
     "{answer}"),
    ("Use the text to work out the answer.\n{context}\n\nQ: {question}", "{answer}"),
    ("{question}\n\nThe answer can be found or computed from this passage: {context}",
     "{answer}"),
    ("Text: {context}\nQuestion: {question}\nAnswer:", "{answer}"),
    ("Based on the article, {question}\n\n{context}", "{answer}"),
    ("{context}\n\nWrite a question about the passage whose answer is {answer}.",
     "{question}"),
    ("Answer: {answer}\n\nPassage: {context}\n\nWhich question could this answer?",
     "{question}"),
]

_MULTIRC = [
    ("{paragraph}\n\nQuestion: \"{question}\"\nResponse: \"{response}\"\nIs the response "
     "correct?\n{options_}", "{answer}"),
    ("Paragraph: {paragraph}\n\nQ: {question}\nProposed answer: {response}\nRight?\n{options_}",
     "{answer}"),
    ("{paragraph}\n\nAccording to the paragraph, is \"{response}\" a correct answer to "
     "\"{question}\"?\n\n{options_}", "{answer}"),
    ("Read the text, then judge the answer.\n\n{paragraph}\n\n{question}\nAnswer given: "
     "{response}\n{options_}", "{answer}"),
    ("{paragraph}\n\nDoes \"{response}\" answer \"{question}\" correctly?\n{options_}",
     "{answer}"),
    ("Text: {paragraph}\nQuestion: {question}\nCandidate answer: {response}\nIs the candidate "
     "right?\n{options_}", "{answer}"),
    ("Check this answer against the passage.\n{paragraph}\n\n{question} -> {response}\n"
     "{options_}", "{answer}"),
    ("{paragraph}\n\n{question}\n\nWould \"{response}\" be accurate?\n{options_}", "{answer}"),
    ("{paragraph}\n\nWrite a question about the paragraph for which \"{response}\" is an "
     "answer (correct: {answer}).", "{question}"),
    ("{paragraph}\n\nQuestion: {question}\nWrite an answer whose correctness is: {answer}",
     "{response}"),
]

_OPENBOOKQA = [
    ("Fact: {fact}\nQuestion: {question}\n\n{options_}", "{answer}"),
    ("{fact}\n\nUsing the fact above, answer: {question}\n{options_}", "{answer}"),
    ("Given that {fact}, {question}\n\n{options_}", "{answer}"),
    ("Science fact: {fact}\n\n{question}\nPick one.\n{options_}", "{answer}"),
    ("Knowing \"{fact}\", which option completes this? {question}\n{options_}", "{answer}"),
    ("{question}\n\nHint: {fact}\n\n{options_}", "{answer}"),
    ("Apply this fact: {fact}\nQuestion: {question}\n{options_}\nAnswer:", "{answer}"),
    ("Read the fact and answer the question.\n\n{fact}\n{question}\n\n{options_}",
     "{answer}"),
    ("Fact: {fact}\n\nWrite a multiple-choice question that this fact answers with "
     "\"{answer}\".", "{question}"),
    ("Question: {question}\nAnswer: {answer}\nWhat fact explains the answer?", "{fact}"),
]

_NEWSROOM = [
    ("Summarize this article titled \"{title}\".\n\n{text}", "{summary}"),
    ("{title}\n\n{text}\n\nWrite a short summary.", "{summary}"),
    ("Article: {text}\n\nSummary in one or two sentences:", "{summary}"),
    ("Headline: {title}\nStory: {text}\n\nWhat is the story about, briefly?", "{summary}"),
    ("Give a brief overview of the following news piece.\n{text}", "{summary}"),
    ("{text}\n\nTL;DR:", "{summary}"),
    ("Read this and write a summary a reader could skim.\n\n{title}\n{text}", "{summary}"),
    ("What is the main point of this article? {text}", "{summary}"),
    ("Write a headline for this article.\n\n{text}", "{title}"),
    ("Summary: {summary}\n\nWrite the full article.", "{text}"),
]

_ROTTEN_TOMATOES = [
    ("Critic reviews of {movie}:\n{reviews}\n\nSum up what the critics think.",
     "{consensus}"),
    ("{reviews}\n\nWrite a one-sentence critics' consensus for {movie}.", "{consensus}"),
    ("Here are reviews of the film {movie}.\n\n{reviews}\n\nOverall verdict:",
     "{consensus}"),
    ("Movie: {movie}\nReviews:\n{reviews}\nConsensus:", "{consensus}"),
    ("Combine these reviews into a short summary of the critical response.\n{reviews}",
     "{consensus}"),
    ("What do reviewers generally say about {movie}?\n\n{reviews}", "{consensus}"),
    ("Summarize the opinions below about {movie}.\n{reviews}", "{consensus}"),
    ("{reviews}\nBriefly, how was {movie} received?", "{consensus}"),
    ("The critics' consensus on {movie} was: \"{consensus}\" Write a review that fits it.",
     "{first_review}"),
    ("Write a short critic review of the movie {movie}.", "{first_review}"),
]

_IDEBATE = [
    ("Debate: {debate}\nArgument:\n{argument}\n\nWhat claim does this argument support?",
     "{claim}"),
    ("{argument}\n\nState the main claim of the argument above in one sentence.", "{claim}"),
    ("Summarize this argument from a debate about \"{debate}\".\n\n{argument}", "{claim}"),
    ("Topic: {debate}\nPoints made:\n{argument}\nClaim:", "{claim}"),
    ("What is this speaker arguing for?\n{argument}", "{claim}"),
    ("Read the argument and give its thesis.\n\n{argument}", "{claim}"),
    ("In the debate \"{debate}\", someone said:\n{argument}\n\nWhat is their point?",
     "{claim}"),
    ("{argument}\nOne-line summary of the position:", "{claim}"),
    ("Write an argument supporting the claim \"{claim}\" in the debate \"{debate}\".",
     "{argument}"),
    ("Claim: {claim}\nWhat debate might this claim belong to?", "{debate}"),
]

_WIKI_LINGUA = [
    ("Summarize these instructions.\n\n{source}", "{target}"),
    ("{source}\n\nWhat are the steps above, in brief?", "{target}"),
    ("How-to article: {source}\n\nShort summary:", "{target}"),
    ("Condense this guide into a few sentences.\n{source}", "{target}"),
    ("{source}\nTL;DR:", "{target}"),
    ("Write a summary of the following how-to text.\n\n{source}", "{target}"),
    ("Give the key steps of this article: {source}", "{target}"),
    ("What does this article tell you to do? {source}", "{target}"),
    ("Write a detailed how-to article from this summary.\n\n{target}", "{source}"),
    ("Summary: {target}\nExpand it into full instructions.", "{source}"),
]

_TRUE_CASE = [
    ("Fix the capitalization of this text: {lower}", "{answer}"),
    ("{lower}\n\nRewrite the text above with correct upper and lower case.", "{answer}"),
    ("This sentence is all lowercase. Capitalize it properly.\n\n{lower}", "{answer}"),
    ("Restore capital letters: {lower}", "{answer}"),
    ("Lowercase text: {lower}\nProperly cased text:", "{answer}"),
    ("Please capitalize where needed.\n{lower}", "{answer}"),
    ("Write this with correct casing: \"{lower}\"", "{answer}"),
    ("{lower}\nMake the capitalization correct.", "{answer}"),
    ("Convert this text to lowercase.\n\n{answer}", "{lower}"),
    ("{answer}\n\nWrite the above in all lowercase letters.", "{lower}"),
]

_WORD_SEGMENT = [
    ("Add spaces between the words: {no_space}", "{answer}"),
    ("{no_space}\n\nThe spaces were removed from this text. Put them back.", "{answer}"),
    ("Split this run-together text into words.\n\n{no_space}", "{answer}"),
    ("Text without spaces: {no_space}\nWith spaces:", "{answer}"),
    ("Please segment into words: {no_space}", "{answer}"),
    ("Insert the missing spaces.\n{no_space}", "{answer}"),
    ("What does this say with normal spacing? {no_space}", "{answer}"),
    ("{no_space}\nWrite it with spaces.", "{answer}"),
    ("Remove all spaces from this sentence.\n\n{answer}", "{no_space}"),
    ("{answer}\n\nWrite the sentence above without any spaces.", "{no_space}"),
]

_COQA = [
    ("{story}\n\nAnswer these questions in order:\n{questions}", "{answers}"),
    ("Read the story and answer the numbered questions.\n\n{story}\n\n{questions}",
     "{answers}"),
    ("Story: {story}\n\nQuestions:\n{questions}\n\nAnswers:", "{answers}"),
    ("{story}\n\nGive short numbered answers.\n{questions}", "{answers}"),
    ("Here is a passage followed by a conversation of questions.\n{story}\n{questions}\n"
     "Reply to each one.", "{answers}"),
    ("{questions}\n\nAnswer the questions above using this text: {story}", "{answers}"),
    ("Text: {story}\nQ:\n{questions}\nA:", "{answers}"),
    ("Use the story to answer every question, one per line.\n{story}\n\n{questions}",
     "{answers}"),
    ("{story}\n\nWrite numbered questions that these answers respond to:\n{answers}",
     "{questions}"),
    ("Answers:\n{answers}\n\nStory: {story}\n\nWhat were the questions?", "{questions}"),
]

_RECORD = [
    ("{passage}\n\nComplete the sentence: {query}\n\n{options_}", "{answer}"),
    ("Read the article and finish the last sentence.\n\n{passage}\n\n{query}\n{options_}",
     "{answer}"),
    ("Article: {passage}\n\nHow does this sentence continue? {query}\n\n{options_}",
     "{answer}"),
    ("{passage}\n\nWhich option correctly completes \"{query}\"?\n{options_}", "{answer}"),
    ("News story:\n{passage}\n\nFill in: {query} ...\n{options_}", "{answer}"),
    ("{query}\n\nUse the article below to complete the sentence above.\n{passage}\n\n"
     "{options_}", "{answer}"),
    ("Based on the story, finish this: {query}\n\n{passage}\n{options_}", "{answer}"),
    ("{passage}\n\nWhat comes next? {query}\n{options_}", "{answer}"),
    ("{passage}\n\nWrite a sentence about the article that ends with: {answer}", "{query}"),
    ("Write a short news article in which \"{query} {answer}\" is true.", "{passage}"),
]

PATTERNS: dict[str, list[tuple[str, str]]] = {
    # entailment
    "rte": _RTE,
    "cb": _CB,
    "mnli_matched": _NLI3,
    "mnli_mismatched": _NLI3,
    "snli": _NLI3,
    "anli_r1": _ANLI,
    "anli_r2": _ANLI,
    "anli_r3": _ANLI,
    "qnli": _QNLI,
    "wnli": _WNLI,
    # reading comprehension
    "squad_v1": _SQUAD,
    "squad_v2": _SQUAD,
    "bool_q": _BOOL_Q,
    "drop": _DROP,
    "multirc": _MULTIRC,
    "openbookqa": _OPENBOOKQA,
    # translation (both directions through the templates)
    **{name: _TRANSLATION for name in (
        "para_crawl_enes", "wmt14_enfr", "wmt16_translate_deen", "wmt16_translate_tren",
        "wmt16_translate_csen", "wmt16_translate_fien", "wmt16_translate_roen",
        "wmt16_translate_ruen")},
    # structure to text
    "common_gen": _COMMON_GEN,
    "web_nlg_en": _STRUCTURED,
    "dart": _STRUCTURED,
    "e2e_nlg": _E2E,
    # common sense
    "story_cloze": _STORY_CLOZE,
    "copa": _COPA,
    "piqa": _PIQA,
    "hellaswag": _HELLASWAG,
    # summarization
    "xsum": _SUMMARY,
    "multi_news": _SUMMARY,
    "cnn_dailymail": _SUMMARY,
    "gigaword": _GIGAWORD,
    "aeslc": _AESLC,
    "samsum": _SAMSUM,
    "ag_news_subset": _AG_NEWS,
    "newsroom": _NEWSROOM,
    "opinion_abstracts_rotten_tomatoes": _ROTTEN_TOMATOES,
    "opinion_abstracts_idebate": _IDEBATE,
    "wiki_lingua_english_en": _WIKI_LINGUA,
    # open-domain QA
    "arc_easy": _ARC,
    "arc_challenge": _ARC,
    "trivia_qa": _CLOSED_BOOK_QA,
    "natural_questions": _CLOSED_BOOK_QA,
    # paraphrase
    "glue_mrpc": _PARAPHRASE,
    "paws_wiki": _PARAPHRASE,
    "glue_qqp": _QQP,
    "stsb": _STSB_PATTERNS,
    # sentiment
    "imdb_reviews": _SENTIMENT,
    "sentiment140": _SENTIMENT,
    "yelp_polarity_reviews": _SENTIMENT,
    "sst2": _SENTIMENT,
    # one dataset each from the small clusters
    "fix_punct": _FIX_PUNCT,
    "true_case": _TRUE_CASE,
    "word_segment": _WORD_SEGMENT,
    "coqa": _COQA,
    "record": _RECORD,
    "winogrande": _WINOGRANDE,
    "wsc": _WSC,
    "definite_pronoun_resolution": _DPR,
    "math_dataset": _MATH,
    "quac": _QUAC,
    "wic": _WIC,
    "cola": _COLA,
    "trec": _TREC,
    "cosmos_qa": _COSMOS_QA,
}
