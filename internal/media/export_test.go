package media

const RaceEnabled = raceEnabled
