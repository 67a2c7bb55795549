"""Attribution methods for any ``torch.nn.Module`` (CNNs included): one file per method, arrays out."""
