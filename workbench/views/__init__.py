"""What a person SEES: Qt widgets and the window. No simulation logic here."""
