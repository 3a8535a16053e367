"""Numbers the paper reports (Gera et al., ACL 2023), for reports to print beside ours."""

# Table 4: LAMBADA accuracy and perplexity (zero-shot, lm-eval 0.3.0); ACD = layer 24 vs 12, alpha 0.1.
TABLE4_LAMBADA = {
    "gpt2-medium": {"acc": 0.43, "perplexity": 18.3},
    "gpt2-xl": {"acc": 0.51, "perplexity": 10.6},
    "gpt2-medium + ACD": {"acc": 0.55, "perplexity": 15.4},
}

# Table 6 (App. C): the original vs a new final head, alone and as the ACD expert.
# Columns: greedy diversity and coherence (WikiText-103 prompts), LAMBADA accuracy, WikiText-2 perplexity.
TABLE6 = {
    "gpt2-medium": {  # L-24, ACD amateur at layer 12
        "orig": {"diversity": 0.22, "coherence": 0.63, "lambada_acc": 0.43, "wikitext_ppl": 26.8},
        "new": {"diversity": 0.21, "coherence": 0.59, "lambada_acc": 0.39, "wikitext_ppl": 30.0},
        "orig+acd": {"diversity": 0.62, "coherence": 0.64, "lambada_acc": 0.56, "wikitext_ppl": 71.3},
        "new+acd": {"diversity": 0.75, "coherence": 0.63, "lambada_acc": 0.55, "wikitext_ppl": 57.2},
    },
    "EleutherAI/gpt-neo-125M": {  # L-12, ACD amateur at layer 8
        "orig": {"diversity": 0.12, "coherence": 0.60, "lambada_acc": 0.37, "wikitext_ppl": 32.3},
        "new": {"diversity": 0.09, "coherence": 0.57, "lambada_acc": 0.31, "wikitext_ppl": 38.5},
        "orig+acd": {"diversity": 0.30, "coherence": 0.62, "lambada_acc": 0.53, "wikitext_ppl": 68.1},
        "new+acd": {"diversity": 0.32, "coherence": 0.62, "lambada_acc": 0.50, "wikitext_ppl": 71.8},
    },
}
